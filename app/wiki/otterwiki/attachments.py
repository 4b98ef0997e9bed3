"""Otterwiki's upload and rename forms held to the page API's attachment name rules.

Otterwiki stores what its forms send under `sanitize_filename` of the name and nothing more: a
hidden `.hidden` or `.gitattributes` (the latter changes how git treats the page's files),
`F1.txt` next to `f1.txt`, which a case-insensitive checkout cannot hold. The page API refuses
those (`app.pages.paths.clean_new_attachment_name`, `Pages.check_upload`); so do the forms now,
before Otterwiki writes anything, with an error toast back on the page the form came from, as
Otterwiki answers its own failures. The editor's inline upload (a script call answered in
JSON) gets the same refusal as a 4xx. Names that are hostile whatever the rules (slashes, `.md`,
control characters) are refused earlier still, with a 400 (`errors._check_names`). A file past
the attachment cap is refused with 413, as the page API refuses it.
"""

from __future__ import annotations

from types import ModuleType

from app.core.errors import BadRequest
from app.core.errors import PayloadTooLarge
from app.core.errors import RobotError
from app.pages.paths import clean_new_attachment_name
from app.pages.storage import Pages

_UPLOAD_FORM, _INLINE_UPLOAD, _RENAME_FORM = "attachments", "inline_attachment", "edit_attachment"


def _stored_name(name: str) -> str:
    """The name Otterwiki stores a file under when a form names it `name` (wiki.py)."""
    from otterwiki.util import sanitize_filename
    from werkzeug.utils import secure_filename

    return sanitize_filename(name) or secure_filename(name)


def _refuse_new_names(pagepath: str, names: list[str]) -> None:
    """Raise the page API's refusal of the first of `names` that may not be added now."""
    from flask import current_app
    from flask import g

    pages = Pages.for_config(g.tenant.storage, current_app.config)
    for name in names:
        pages.check_upload(pagepath, name)
    folded = [name.casefold() for name in names]
    if len(set(folded)) != len(folded):
        raise BadRequest("the same file name is sent twice (names differing only in case too)")


def _refuse_files_past_the_cap() -> None:
    """Raise 413 when a file of the form holds more than the attachment cap.

    The app's MAX_CONTENT_LENGTH is the cap plus the form's envelope (config.py): a file a few
    KiB past the cap fitted in it and was stored, where the page API answers 413.
    """
    from flask import g
    from flask import request

    cap = g.tenant.settings.max_attachment_bytes
    for upload in request.files.getlist("file"):
        stream = upload.stream
        stream.seek(0, 2)
        size = stream.tell()
        stream.seek(0)
        if size > cap:
            raise PayloadTooLarge(f"an attachment may hold at most {cap} bytes", max_bytes=cap)


def _upload_names() -> list[str]:
    from flask import request

    given = request.form.get("filename") or ""
    uploads = [u.filename for u in request.files.getlist("file") if u.filename]
    return [_stored_name(given or name) for name in uploads]


def _check_attachment_forms():
    """Before Otterwiki's upload, inline upload and rename views: refuse what the page API
    would, writing nothing; a form gets Otterwiki's error toast and is sent back."""
    from flask import redirect
    from flask import request
    from flask import url_for
    from otterwiki.auth import has_permission
    from otterwiki.helper import toast

    endpoint, args = request.endpoint, request.view_args or {}
    if request.method != "POST" or endpoint not in (_UPLOAD_FORM, _INLINE_UPLOAD, _RENAME_FORM):
        return None
    if not has_permission("UPLOAD"):
        return None  # Otterwiki's view refuses the caller (403) before it writes anything
    if endpoint != _RENAME_FORM:
        _refuse_files_past_the_cap()  # 413, as the form's body past its cap is answered
    pagepath = args.get("pagepath", "")
    back = url_for(_UPLOAD_FORM, pagepath=pagepath)
    try:
        if endpoint == _RENAME_FORM:
            old, new = args.get("filename", ""), request.form.get("new_filename") or ""
            if request.form.get("delete") or not new or _stored_name(new) == old:
                return None  # a delete, or no rename: Otterwiki's own checks apply
            back = url_for(_RENAME_FORM, pagepath=pagepath, filename=old)
            new = _stored_name(new)
            if new.casefold() == old.casefold():  # only its case changes: it meets itself
                clean_new_attachment_name(new)
            else:
                _refuse_new_names(pagepath, [new])
        else:
            _refuse_new_names(pagepath, _upload_names())
    except RobotError as error:
        if endpoint == _INLINE_UPLOAD:
            raise  # the editor's script reads a JSON error
        toast(f"Refused: {error.message}.", "error")
        return redirect(back)
    return None


def install_attachment_rules(server: ModuleType) -> None:
    """Check Otterwiki's attachment forms before their views, after `errors`' checks."""
    server.app.before_request_funcs.setdefault(None, []).append(_check_attachment_forms)
