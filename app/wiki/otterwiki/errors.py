"""Answer bad input to Otterwiki's views with a 4xx, never a git error as a 500.

Before a view runs: HEAD runs as GET, a revision in the URL must be a commit of the wiki's
repository (else 404), an inline upload must carry a file (else 400), and every page name in
the URL or in a form field that names a page or an attachment must pass the page API's rules
(`app.pages.paths`): Otterwiki checks none, and one save to `/-/save` committed `.md`, a page with
an empty name that broke the sidebar, the index and search of the whole wiki. A view that returns
nothing (Otterwiki does on a form without its expected fields) answers 400. A thumbnail is made
(by the thumbnail route, or the page view's ?thumbnail, ?size, ?width and ?height) only at sides
of 1 to THUMBNAIL_MAX pixels (else 404), and only of an image Pillow can read whole within
THUMBNAIL_MAX_PIXELS and write again; of any other image the file itself is sent, as Otterwiki
does for SVG. Flask error handlers map the storage and git errors that bad input still provokes
to 404 or 400. Errors we cannot tell apart from a server fault stay 500s and are
logged with their traceback. Text from git that was no UTF-8 (a pushed commit's author or
message, a file's lines in a diff: GitPython decodes it with surrogateescape) is shown with
U+FFFD in its place in every template, where it made the page unsendable (500).
"""

from __future__ import annotations

import functools
import io
import logging
import re
import struct
import warnings
from types import ModuleType

from app.core.errors import BadRequest
from app.core.errors import NotFound
from app.core.errors import PayloadTooLarge
from app.core.errors import Unavailable
from app.pages.names import moved_files_problem
from app.pages.paths import MAX_CONTENT_BYTES
from app.pages.paths import MAX_MESSAGE_CHARS
from app.pages.paths import PathRules
from app.pages.paths import clean_attachment_name
from app.wiki.otterwiki.verdicts import run_bounded

log = logging.getLogger("robot.wiki")

# View arguments of Otterwiki's rules that name a commit (views.py: revision, rev_a, rev_b).
_REVISION_ARGS = ("revision", "rev_a", "rev_b")
# Otterwiki only ever links abbreviated or full hex commit ids; anything else is not one.
_REVISION_RE = re.compile(r"[0-9a-fA-F]{4,40}")
# View arguments of Otterwiki's rules that name a page (views.py: path, pagepath).
_PAGE_ARGS = ("path", "pagepath")
# Form fields that name a page, by endpoint: create's new page, rename's new name.
_PAGE_FIELDS = {"create": "pagename", "rename": "new_pagename"}
# Form fields that name an attachment, by endpoint: upload's file name, rename-attachment's.
_ATTACHMENT_FIELDS = {"attachments": "filename", "edit_attachment": "new_filename"}
_UPLOAD_ENDPOINTS = ("attachments", "inline_attachment")
# Otterwiki's forms that change the page their URL names (GET shows the form).
_FORMS_OF_A_PAGE = ("edit", "rename", "delete")
# What git says on stderr when a path or revision named in the request does not exist.
_GIT_NOT_FOUND = (
    "did not match any file",
    "unknown revision",
    "bad revision",
    "bad object",
    "invalid object",
    "not a valid object name",
    "ambiguous argument",
    "does not exist in",
    "exists on disk, but not in",
    "no pathspec was given",
)


# The largest thumbnail side one may ask for, in pixels (Otterwiki's own pages ask for 80).
THUMBNAIL_MAX = 1024
# The most pixels an attachment may have to get a thumbnail: decoding costs 1-4 bytes and some
# CPU per pixel (a 9000 x 9000 PNG took 1.5 s). Larger images are sent as they are.
THUMBNAIL_MAX_PIXELS = 25_000_000
# The longest side, in pixels, an image resized by width or height may have. Pillow's resize
# weighs the input along each side in one native call, at about 0.14 s per million pixels of
# side: a 1 x 24,999,999 PNG of 121 KB asked at 1 x 1024 cost 3.5-7.5 s that no signal stops
# (review 51). A square thumbnail reduces first and is not held to it.
RESIZE_MAX_SIDE = 32_768
# Scans a JPEG may have to get a thumbnail. libjpeg decodes each scan over the whole image: a
# progressive "scan bomb" of 8,000 scans of 32 bytes each (287 KB) cost 9 s of native CPU per
# thumbnail, which no signal stops, and 40,000 got workers killed (review 41). A camera's
# progressive JPEG has about 10; libjpeg-turbo suggests limiting at 500 (TJPARAM_SCANLIMIT).
# Past the limit the file is sent as it is.
JPEG_MAX_SCANS = 100
# Image formats thumbnails are made of: those browsers show, each decoded in steps the budget's
# signal can stop between (or cheaply). JPEG 2000 is decoded in one native call: a 3500 x 3500
# one cost 4.5 s of CPU for each size asked (review 42); it, TIFF and the rest go as they are.
_THUMBNAIL_FORMATS = frozenset({"PNG", "JPEG", "MPO", "GIF", "WEBP", "BMP"})
# A JPEG's start-of-scan marker (ITU T.81 B.1.1.3). Entropy-coded data never holds it: a 0xFF
# there is followed by 0x00 or a restart marker; metadata (an EXIF thumbnail) holds a few.
_JPEG_SOS = b"\xff\xda"
# What Pillow raises on a file it cannot decode (not an image, cut short, a broken chunk) or
# encode again (KeyError: a format it reads but has no writer for, past the SAVE check).
_UNREADABLE_IMAGE = (
    *(OSError, ValueError, SyntaxError, EOFError, KeyError),
    *(struct.error, ZeroDivisionError, OverflowError),
)


# The environ key the gateway sets when a thumbnail found no turn free: the file itself is
# sent, which costs no CPU, rather than a 429 that left the image broken (twenty-fifth review).
THUMBNAIL_AS_FILE = "robot.thumbnail_as_file"

# Enough of a file for Pillow to read any image header it knows.
_IMAGE_HEADER_BYTES = 1 << 20


def _check_thumbnail_size(**sides: int | None) -> None:
    """Raise NotFound unless every given side (None: not asked for) is 1 to THUMBNAIL_MAX."""
    for name, value in sides.items():
        if value is not None and not 1 <= value <= THUMBNAIL_MAX:
            raise NotFound(f"a thumbnail's {name} is 1 to {THUMBNAIL_MAX} pixels")


def _guarded_thumbnails(attachment_class) -> None:
    """Hold every thumbnail and resize Otterwiki makes to THUMBNAIL_MAX and THUMBNAIL_MAX_PIXELS.

    Otterwiki resizes images in `Attachment.get_thumbnail`, reached from the thumbnail route
    (`/<page>/t/<file>/<size>`) and from the page view of an attachment with `?thumbnail`,
    `?size`, `?width` or `?height`; guarding the method guards both. A side outside 1 to
    THUMBNAIL_MAX answers 404; an attachment Pillow cannot read whole within the pixel limit, or
    has no writer for (XPM, for one), is sent as it is (its own CSP and type), as Otterwiki
    sends SVG.
    """
    import PIL.Image

    original = attachment_class.get_thumbnail

    @functools.wraps(original)
    def get_thumbnail(self, size=80, width=None, height=None):
        _check_thumbnail_size(size=size, width=width, height=height)
        from flask import request

        if request.environ.get(THUMBNAIL_AS_FILE):
            return self.get()
        try:
            with warnings.catch_warnings():
                # Pillow warns past half its limit and raises past it; the limit is ours.
                warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
                if _writable_image(self, width, height):
                    # Native decoding runs past the budget's signal until it returns: held
                    # to the budget, it stops soon after; past it, the file is sent as it
                    # is, now and (the verdict is kept) on the next views.
                    return run_bounded(
                        lambda: original(self, size=size, width=width, height=height),
                        "the image is sent as it is",
                        view=f"thumbnail {self.filepath}",  # one verdict for every size
                    )
        except (PIL.Image.DecompressionBombError, Unavailable, *_UNREADABLE_IMAGE):
            pass
        return self.get()

    attachment_class.get_thumbnail = get_thumbnail


def _writable_image(attachment, width: int | None = None, height: int | None = None) -> bool:
    """Whether Pillow can both read `attachment` (an Otterwiki Attachment whose type says image)
    and write its format again, a JPEG has at most JPEG_MAX_SCANS scans, and Otterwiki's
    resize to `width` and/or `height` (one alone keeps the other in proportion; neither:
    the square thumbnail, which only shrinks) is within _resize_within_bounds(). Reads the
    first _IMAGE_HEADER_BYTES (and a JPEG whole): Pillow's open parses only the header (and
    refuses a decompression bomb there). Raises what Pillow raises on a file it cannot
    read."""
    import PIL.Image
    from otterwiki.server import storage

    if not attachment.exists() or not (attachment.mimetype or "").startswith("image/"):
        return True  # Otterwiki's own answer: 404
    if attachment.mimetype == "image/svg+xml":
        return True  # Otterwiki sends it as it is
    PIL.Image.init()  # fills the registry of writers
    head = storage.load(attachment.filepath, mode="rb", size=_IMAGE_HEADER_BYTES)
    with PIL.Image.open(io.BytesIO(head)) as image:
        if image.format in ("JPEG", "MPO"):
            whole = storage.load(attachment.filepath, mode="rb")
            if whole.count(_JPEG_SOS) > JPEG_MAX_SCANS:
                return False
        if width is not None or height is not None:
            if not _resize_within_bounds(image.size, width, height):
                return False
        return image.format in _THUMBNAIL_FORMATS and image.format in PIL.Image.SAVE


def _resize_within_bounds(sides: tuple[int, int], width: int | None, height: int | None) -> bool:
    """Whether Otterwiki's resize of an image of `sides` (width, height in pixels) to `width`
    and/or `height` shrinks it, making neither side larger nor more than THUMBNAIL_MAX
    squared pixels, and runs along no side past RESIZE_MAX_SIDE. Upscaling costs by the
    output: one side of a 30000 x 100 PNG of 9 KB, resized to 1024, made a 1024 x 307,200
    image (5 s of native CPU, 1.5 GB: review 48), and a 1 x 24,999,999 PNG asked at 1024 x
    1024 took 4 s and 1.9 GB (review 50), which no signal stops; a browser scales an image
    up itself."""
    if max(sides) > RESIZE_MAX_SIDE:
        return False
    aspect_ratio = sides[0] / sides[1]  # as Otterwiki's get_thumbnail (2.26.1)
    if height is None:
        height = int(width / aspect_ratio)
    elif width is None:
        width = int(height * aspect_ratio)
    return width <= sides[0] and height <= sides[1] and width * height <= THUMBNAIL_MAX**2


def _head_as_get() -> None:
    from flask import request

    # Otterwiki's views test `request.method == "GET"` and treat anything else as a form post,
    # so HEAD ran the save branch (with no CSRF check: Flask-WTF skips HEAD) and then returned
    # None (500). Run HEAD as GET; Werkzeug still sends no body, as the environ says HEAD.
    if request.method == "HEAD":
        request.method = "GET"


def _check_revisions() -> None:
    from flask import request

    args = request.view_args or {}
    for name in _REVISION_ARGS:
        revision = args.get(name)
        if revision is not None and not _is_commit(revision):
            raise NotFound(f"there is no revision {revision[:64]!r} in this wiki")


# Otterwiki's views that write a page's text read it as `request.form.get("content", "")`: a
# save without the field committed an empty page, and a draft without it (a GET, too: the
# route takes one) stored an empty draft.
_TEXT_WRITES = frozenset({"save", "draft"})


def _check_inline_upload() -> None:
    from flask import request

    # Otterwiki answers an inline upload without a file with abort(500) (wiki.py,
    # upload_attachments): that is the caller's mistake, say so.
    if request.endpoint == "inline_attachment" and not any(
        upload.filename for upload in request.files.getlist("file")
    ):
        raise BadRequest("send the file to attach in the form field 'file'")


def _check_written_text() -> None:
    """Refuse, after the name's checks, a save or draft whose form lacks the text it writes or
    carries more than a page may hold (MAX_CONTENT_BYTES, as the page API), and any form's
    commit message over MAX_MESSAGE_CHARS: a 3 MB message per save made the changelog, its
    feeds and the changes API 21 MB after seven saves."""
    from flask import request

    if (request.endpoint or "").startswith("page_api."):
        return  # the page API reads its body itself, streaming, and checks its own fields
    if request.method != "POST" and request.endpoint not in _TEXT_WRITES:
        return
    for field in ("commit", "message"):
        if len(request.form.get(field, "")) > MAX_MESSAGE_CHARS:
            raise BadRequest(f"the commit message is longer than {MAX_MESSAGE_CHARS} characters")
    if request.endpoint not in _TEXT_WRITES:
        return
    if len(request.form.get("content", "").encode("utf-8", "surrogatepass")) > MAX_CONTENT_BYTES:
        raise PayloadTooLarge(f"a page may hold at most {MAX_CONTENT_BYTES} bytes of text")
    if "content" not in request.form:
        raise BadRequest("send the page's text in the form field 'content' (a POST)")


def _check_names() -> None:
    """Refuse page and attachment names the page API refuses, before Otterwiki writes them."""
    from flask import request
    from otterwiki.util import sanitize_pagename

    endpoint = request.endpoint or ""
    if endpoint.startswith("page_api."):
        return  # the page API checks its own paths and answers in JSON
    args = request.view_args or {}
    if request.method != "POST":
        # Reads pass: Otterwiki serves a page's attachments under the page's own path
        # (/Page/image.png), and the gateway already refuses dot segments and control bytes.
        # The forms do not: the editor opened for names no save could take (`/C:notes/edit`),
        # under either of its spellings (`/C:notes?edit`, which the 404 page links to), and so
        # did rename and delete (nineteenth review).
        editor = endpoint in _FORMS_OF_A_PAGE or (endpoint == "view" and "edit" in request.values)
        if editor and isinstance(args.get("path"), str):
            PathRules().clean(args["path"])
        return
    for name in _PAGE_ARGS:
        value = args.get(name)
        if isinstance(value, str):
            PathRules().clean(value)
    field = _PAGE_FIELDS.get(endpoint)
    if field and field in request.form:
        name = request.form[field]
        # A name Otterwiki's create would change, it offers back corrected and writes nothing.
        if endpoint != "create" or sanitize_pagename(name) == name:
            PathRules().clean(name)
        if endpoint == "rename" and isinstance(args.get("path"), str):
            _check_moved_files(args["path"], name)
    field = _ATTACHMENT_FIELDS.get(endpoint)
    if field and request.form.get(field):  # empty: Otterwiki keeps the file's own name
        clean_attachment_name(request.form[field])
    if endpoint in _UPLOAD_ENDPOINTS:
        for upload in request.files.getlist("file"):
            if upload.filename:  # an empty file input: Otterwiki skips it
                clean_attachment_name(upload.filename)


def _check_moved_files(path: str, to: str) -> None:
    """Refuse Otterwiki's rename of page `path` to `to` when it would move a subpage or an
    attachment in its folder past the path limits (app.pages.names.moved_files_problem), as
    the page API's rename does."""
    from otterwiki.helper import get_filename
    from otterwiki.server import storage

    old_folder, new_folder = get_filename(path)[:-3], get_filename(to)[:-3]
    if storage.isdir(old_folder):
        problem = moved_files_problem(new_folder, storage.list(old_folder)[0])
        if problem:
            raise BadRequest(problem)


def _never_none(view):
    @functools.wraps(view)
    def answer(*args, **kwargs):
        response = view(*args, **kwargs)
        if response is None:
            # Otterwiki's views fall through without an answer when a form lacks the field
            # they branch on (handle_preferences without update_preferences): Flask would 500.
            raise BadRequest("the form was incomplete: it lacks a field this page expects")
        return response

    return answer


def _skip_nameless_pages(storage) -> None:
    """Leave out of Otterwiki's file listings a `.md` with no page name before it.

    An older version let `/-/save` commit one; Otterwiki's sidebar, page index and search then
    fail on it (IndexError) for every page of the wiki. Hidden, the rest of the wiki works and
    the file can still be removed with git.
    """
    listing = storage.list

    @functools.wraps(listing)
    def list_named(*args, **kwargs):
        files, directories = listing(*args, **kwargs)
        return [f for f in files if f.rsplit("/", 1)[-1] != ".md"], directories

    storage.list = list_named


def _is_commit(revision: str) -> bool:
    import git
    from otterwiki.server import storage

    if not _REVISION_RE.fullmatch(revision):
        return False
    try:
        storage.repo.git.rev_parse("--verify", "--quiet", f"{revision}^{{commit}}")
    except git.GitCommandError:
        return False
    return True


def _answer(error):
    from flask import request

    from app.wiki.responses import error_response

    return error_response(error, request.path, request.method)


def _storage_not_found(error):
    return _answer(NotFound(str(error) or "there is no such page or file in this wiki"))


def _storage_error(error):
    if "Cmd(" in str(error):
        raise error  # a git command failed on housekeeping (gc, count-objects): a server fault
    log.warning("refused a request Otterwiki's storage could not do: %s", error)
    return _answer(BadRequest(str(error) or "the wiki's storage could not do that"))


def _git_error(error):
    stderr = str(getattr(error, "stderr", "") or error).lower()
    if any(sign in stderr for sign in _GIT_NOT_FOUND):
        log.info("git found nothing the request named: %s", stderr.strip()[:300])
        return _answer(NotFound("there is no such page, file or revision in this wiki"))
    raise error  # a real fault: Flask logs it with its traceback and answers 500


def _replace_lone_surrogates(env) -> None:
    """Make `env` (a Jinja environment, before it compiles a template) output U+FFFD for each
    byte of a lone surrogate in any value: no UTF-8 can carry one, and Werkzeug failed to
    encode the whole page (500)."""
    earlier = env.finalize

    def finalize(value):
        if earlier is not None:
            value = earlier(value)
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                text = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
                return type(value)(text)  # Markup stays Markup
        return value

    env.finalize = finalize


def _refuse_unreadable_blame(storage_class) -> None:
    """Make `storage_class.blame` (Otterwiki's GitStorage) raise Unavailable (503, saying to
    use git) where GitPython cannot read git's blame: it skips an author line that is no
    UTF-8, then fails looking for the author (KeyError)."""
    original = storage_class.blame
    if getattr(original, "robot_readable", False):
        return

    def blame(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        except KeyError:
            raise Unavailable(
                "this page's blame cannot be shown: a commit in its history names its author "
                "in bytes that are no UTF-8; clone the wiki with git and run git blame"
            ) from None

    blame.robot_readable = True
    storage_class.blame = blame


def _bad_git_name(error):
    return _answer(NotFound("there is no such revision in this wiki"))


def answer_bad_input(server: ModuleType) -> None:
    """Register on Otterwiki's app the checks before its views and the error handlers.

    `server` is the booted `otterwiki.server` module. HEAD runs views as GET; unknown revisions
    answer 404, an inline upload without a file and a save or draft without
    its text 400; thumbnails as the module says.
    StorageNotFound and gitdb's BadName and BadObject answer 404; any other StorageError 400
    (logged); GitCommandError 404 when git says the named path or revision does not exist, else
    it stays a logged 500. Under /api/v1/ the answers are JSON
    (`app.wiki.responses.error_response`).
    """
    import git
    import gitdb.exc
    from otterwiki.gitstorage import StorageError
    from otterwiki.gitstorage import StorageNotFound

    app = server.app
    checks = app.before_request_funcs.setdefault(None, [])
    checks.insert(0, _head_as_get)
    checks.extend([_check_revisions, _check_inline_upload, _check_names, _check_written_text])
    import PIL.Image

    # Pillow's decompression-bomb limit: it raises past twice this many pixels.
    PIL.Image.MAX_IMAGE_PIXELS = THUMBNAIL_MAX_PIXELS // 2
    from otterwiki.wiki import Attachment

    _guarded_thumbnails(Attachment)
    for endpoint, view in list(app.view_functions.items()):
        app.view_functions[endpoint] = _never_none(view)
    _skip_nameless_pages(server.storage)
    _replace_lone_surrogates(app.jinja_env)
    _refuse_unreadable_blame(type(server.storage))
    app.register_error_handler(StorageNotFound, _storage_not_found)
    app.register_error_handler(StorageError, _storage_error)
    app.register_error_handler(git.GitCommandError, _git_error)
    app.register_error_handler(gitdb.exc.BadName, _bad_git_name)
    app.register_error_handler(gitdb.exc.BadObject, _bad_git_name)
