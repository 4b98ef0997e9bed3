"""The JSON page API under /api/v1 of every wiki host: parse, check the role, call app.pages."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import g
from flask import request

from app.core.csp import ATTACHMENT_POLICY
from app.core.identity import refusal
from app.pages import export
from app.pages import search as pagesearch
from app.pages.paths import PathRules
from app.pages.paths import clean_limit
from app.pages.storage import Pages
from app.web.flask_app import json_body
from app.web.flask_app import register_error_handlers

bp = Blueprint("page_api", __name__, url_prefix="/api/v1")
register_error_handlers(bp)

# JSON escaping can make 1 MiB of content several times larger on the wire.
MAX_REQUEST_BYTES = 8 * 1024 * 1024


def _require(permission: str) -> None:
    doing = "changing pages" if permission != "READ" else "reading"
    problem = refusal(g.caller, permission, g.tenant.wiki.is_public, doing)
    if problem is not None:
        raise problem


def _pages(permission: str = "READ") -> Pages:
    _require(permission)
    config = current_app.config
    rules = PathRules(retain_case=bool(config.get("RETAIN_PAGE_NAME_CASE")))
    return Pages(g.tenant.storage, rules, str(config.get("WIKILINK_STYLE") or ""))


def _author() -> tuple[str, str]:
    return g.caller.git_identity(g.tenant.settings.platform_domain)


def _body() -> dict:
    request.max_content_length = MAX_REQUEST_BYTES
    return json_body()


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
        "permissions": list(caller.permissions(g.tenant.wiki.is_public)),
    }


@bp.get("/pages")
def list_pages():
    return {"pages": _pages().list(request.args.get("prefix", ""))}


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
    response = Response(data, mimetype=mime)
    # Uploaded files are served from the wiki's own origin: never let one run as a page there.
    response.headers["Content-Security-Policy"] = ATTACHMENT_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/orphans")
def orphans():
    return {"pages": pagesearch.orphans(_pages())}


@bp.get("/search")
def search():
    query = request.args.get("q", "")
    results = pagesearch.search(_pages(), query, clean_limit(request.args.get("limit"), 20))
    return {"query": query, "results": results}


@bp.get("/changes")
def changes():
    return {"changes": _pages().changes(clean_limit(request.args.get("limit"), 50))}


@bp.get("/export")
def export_wiki():
    _require("READ")
    tenant = g.tenant
    fmt = request.args.get("format", "zip")
    name, mime, chunks = export.archive(tenant.settings.repo_path(tenant.slug), tenant.slug, fmt)
    response = Response(chunks, mimetype=mime)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
