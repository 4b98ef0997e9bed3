"""The JSON page API under /api/v1 of every wiki host: parse, check the role, call app.pages."""

from __future__ import annotations

import io
import re
from urllib.parse import parse_qsl
from urllib.parse import unquote
from urllib.parse import urlsplit

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import g
from flask import request
from werkzeug.datastructures import MultiDict

from app.core.csp import ATTACHMENT_POLICY
from app.core.csp import inert_mimetype
from app.core.errors import BadRequest
from app.core.errors import Forbidden
from app.core.errors import PayloadTooLarge
from app.core.identity import refusal
from app.pages import export
from app.pages import search as pagesearch
from app.pages.paths import MAX_LIMIT
from app.pages.paths import clean_attachment_name
from app.pages.paths import clean_limit
from app.pages.paths import clean_new_attachment_name
from app.pages.storage import Pages
from app.web.flask_app import capped_body
from app.web.flask_app import json_body
from app.web.flask_app import register_error_handlers
from app.web.heartbeat import kept_alive
from app.wiki.heavy import heavy_search
from app.wiki.origin import cross_site_refusal
from app.wiki.otterwiki.config import FORM_ENVELOPE_BYTES

bp = Blueprint("page_api", __name__, url_prefix="/api/v1")
register_error_handlers(bp)

# JSON escaping can make 1 MiB of content several times larger on the wire.
MAX_REQUEST_BYTES = 8 * 1024 * 1024
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A percent-encoded / or \ (either case of hex digit).
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)


def _require(permission: str) -> None:
    doing = "changing pages" if permission != "READ" else "reading"
    problem = refusal(g.caller, permission, g.tenant.wiki.is_public, doing)
    if problem is not None:
        raise problem


def _same_origin_cookie_writes() -> None:
    """Refuse a cookie-borne write that another site (another wiki's page) may have sent."""
    # Only a browser session rides along by itself; tokens and OAuth come as Bearer headers.
    if g.caller.via != "session" or "Authorization" in request.headers:
        return
    own_origin = g.tenant.settings.wiki_url(g.tenant.slug).rstrip("/")
    problem = cross_site_refusal(request.headers, own_origin)
    if problem is not None:
        raise Forbidden(problem)


def _pages(permission: str = "READ") -> Pages:
    """The wiki's pages once the caller may do `permission` there (and, for a change, proved
    it is no cross-site request)."""
    _require(permission)
    if permission != "READ" or request.method not in _SAFE_METHODS:
        _same_origin_cookie_writes()
    link_map = g.tenant.settings.link_map_path(g.tenant.slug)
    return Pages.for_config(g.tenant.storage, current_app.config, link_map)


def _author() -> tuple[str, str]:
    return g.caller.git_identity(g.tenant.settings.platform_domain)


def _body() -> dict:
    request.max_content_length = MAX_REQUEST_BYTES
    return json_body()


def _attachment_cap() -> int:
    return g.tenant.settings.max_attachment_bytes


def _too_large(cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"an attachment may hold at most {cap} bytes", max_bytes=cap)


def _raw_upload() -> bytes:
    """The request body, refused (413) past the cap however it is framed (see capped_body)."""
    cap = _attachment_cap()
    return capped_body(cap, _too_large(cap))


def _form_uploads() -> tuple[list[tuple[str, bytes]], MultiDict]:
    """The (file name, bytes) of each multipart `file` field, each within the cap, and the
    form's other fields.

    The whole body is read first against the cap plus the form's envelope (see capped_body):
    Werkzeug's form parser reads a chunked body only up to its limit and then drops the
    form, or keeps what it parsed so far, without saying the body was too large.
    """
    cap = _attachment_cap()
    if request.mimetype != "multipart/form-data":
        raise BadRequest("send the files as multipart/form-data in fields named 'file'")
    body = capped_body(cap + FORM_ENVELOPE_BYTES, _too_large(cap))
    parser = request.make_form_data_parser()
    _, form, files = parser.parse(
        io.BytesIO(body), request.mimetype, len(body), request.mimetype_params
    )
    try:
        fields = [(field.filename, field.stream.read(cap + 1)) for field in files.getlist("file")]
    finally:
        # The parser's temporary files: the request does not know them, so it cannot close them.
        for _, field in files.items(multi=True):
            field.close()
    if not fields:
        raise BadRequest("no file: send each file in a multipart field named 'file'")
    uploads = []
    for filename, data in fields:
        if len(data) > cap:
            raise _too_large(cap)
        uploads.append((clean_new_attachment_name(filename), data))
    names = [name.casefold() for name, _ in uploads]
    if len(set(names)) != len(names):
        raise BadRequest("the same file name is sent twice (names differing only in case too)")
    return uploads, form


@bp.before_request
def _refuse_separators_in_attachment_names() -> None:
    """Refuse an attachment name spelled with an encoded separator, saying so.

    The server decodes `%2F` before routing, so `PUT .../attachments/a%2Fb.txt` reached the
    page route as page `P/attachments/a/b.txt` and was told to send JSON (GET and DELETE: that
    the page path may not hold a dot). Only the raw URI still shows that the caller named one
    file after `/attachments/`; a page path encoded whole (`A%2Fattachments%2FB`) has no
    literal `/attachments/` and is routed as before.
    """
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw:
        return
    folder, _, name = urlsplit(raw).path.rpartition("/")
    if (
        folder.startswith(f"{bp.url_prefix}/pages/")
        and folder.endswith("/attachments")
        and _ENCODED_SEPARATOR.search(name)
    ):
        clean_attachment_name(unquote(name))  # raises: the name must not contain slashes


def _path_arg(name: str) -> str:
    """The query argument `name` ("" when absent) decoded as the URL's path is: bytes that are
    no UTF-8 become U+FFFD, which the path rules refuse. request.args keeps such bytes
    percent-encoded instead, so `prefix=S%E9` listed the pages under a literal `S%E9`."""
    query = request.query_string.decode("utf-8", "replace")
    pairs = parse_qsl(query, keep_blank_values=True, errors="replace")
    return next((value for key, value in pairs if key == name), "")


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # private pages must not sit in caches
    return response


@bp.get("/whoami")
def whoami():
    _require("READ")
    caller = g.caller
    return {
        "wiki": g.tenant.slug,
        "did": caller.did,
        "handle": caller.handle,
        "role": caller.role,
        "via": caller.via,
        "agent": caller.agent.as_dict() if caller.agent else None,
        "permissions": list(caller.permissions(g.tenant.wiki.is_public)),
    }


@bp.get("/pages")
def list_pages():
    """Every page (under `prefix`), in order of path; with `limit`, at most that many after the
    path `after`, and `next` (the `after` of the next call) while more follow."""
    prefix, after = _path_arg("prefix"), _path_arg("after")
    if request.args.get("limit") is None:
        return {"pages": _pages().list(prefix, after=after)}
    limit = clean_limit(request.args.get("limit"), MAX_LIMIT)
    pages = _pages().list(prefix, limit + 1, after)
    if len(pages) <= limit:
        return {"pages": pages}
    return {"pages": pages[:limit], "next": pages[limit - 1]["path"]}


@bp.get("/pages/<path:path>")
def read_page(path):
    return _pages().read(path, request.args.get("revision"))


@bp.put("/pages/<path:path>")
def write_page(path):
    pages, body = _pages("WRITE"), _body()
    result = pages.write(
        path, body.get("content"), _author(), body.get("message"), body.get("base_revision")
    )
    return result, 201 if result["created"] else 200


@bp.post("/pages/<path:path>/append")
def append_page(path):
    """Add a paragraph at the end of a page (created if missing): no base_revision needed, as
    the page is read and written under the wiki's write lock."""
    pages, body = _pages("WRITE"), _body()
    result = pages.append(path, body.get("content"), _author(), body.get("message"))
    return result, 201 if result["created"] else 200


@bp.delete("/pages/<path:path>")
def delete_page(path):
    pages = _pages("WRITE")
    message = request.args.get("message")
    return pages.delete(path, _author(), message)


@bp.post("/pages/<path:path>/rename")
def rename_page(path):
    pages, body = _pages("WRITE"), _body()
    update_links = body.get("update_links", False)
    return pages.rename(path, body.get("to"), _author(), update_links, body.get("message"))


@bp.get("/pages/<path:path>/history")
def page_history(path):
    return _pages().history(path, clean_limit(request.args.get("limit"), 50))


@bp.get("/pages/<path:path>/links")
def page_links(path):
    return pagesearch.links(_pages(), path)


@bp.get("/pages/<path:path>/attachments")
def list_attachments(path):
    return {"attachments": _pages().attachments(path)}


@bp.get("/pages/<path:path>/attachments/<name>")
def get_attachment(path, name):
    data, mime = _pages().attachment(path, name, request.args.get("revision"))
    response = Response(data, mimetype=inert_mimetype(mime))
    # Uploaded files are served from the wiki's own origin: never let one run as a page there.
    response.headers["Content-Security-Policy"] = ATTACHMENT_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.put("/pages/<path:path>/attachments/<name>")
def put_attachment(path, name):
    pages = _pages("UPLOAD")
    data = _raw_upload()
    result = pages.upload_attachment(path, name, data, _author(), request.args.get("message"))
    return result, 201 if result["created"] else 200


@bp.post("/pages/<path:path>/attachments")
def post_attachments(path):
    """Each file in its own commit; every file is checked (name, page, collisions) before the
    first is written."""
    pages = _pages("UPLOAD")
    uploads, form = _form_uploads()
    message = form.get("message")
    for name, _ in uploads:  # a refusal of any file comes before the first is written
        pages.check_upload(path, name)
    results = [pages.upload_attachment(path, n, data, _author(), message) for n, data in uploads]
    created = any(result["created"] for result in results)
    body = {"path": results[0]["path"], "attachments": results, "revision": results[-1]["revision"]}
    return body, 201 if created else 200


@bp.delete("/pages/<path:path>/attachments/<name>")
def delete_attachment(path, name):
    pages = _pages("WRITE")
    return pages.delete_attachment(path, name, _author(), request.args.get("message"))


@bp.get("/orphans")
def orphans():
    return {"pages": pagesearch.orphans(_pages())}


@bp.get("/search")
def search():
    query = request.args.get("q", "")
    limit = clean_limit(request.args.get("limit"), 20)
    index = g.tenant.settings.search_index_path(g.tenant.slug)
    results = pagesearch.search(_pages(), query, limit, index, heavy_search)
    return {"query": query, "results": results}


@bp.get("/changes")
def changes():
    limit = clean_limit(request.args.get("limit"), 50)
    return {"changes": _pages().changes(limit, request.args.get("by"))}


@bp.get("/export")
def export_wiki():
    _require("READ")
    tenant = g.tenant
    fmt = request.args.get("format", "zip")
    name, mime, chunks = export.archive(tenant.settings.repo_path(tenant.slug), tenant.slug, fmt)
    # A large wiki over a slow link outlasts gunicorn's worker timeout: the download keeps its
    # worker alive while it moves, as a git clone does.
    response = Response(kept_alive(chunks, request.environ.get("gunicorn.socket")), mimetype=mime)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
