"""The landing page at / and the dashboard at /app/: my wikis, wikis shared with me, a new wiki."""

from __future__ import annotations

from flask import Blueprint
from flask import flash
from flask import g
from flask import redirect
from flask import request
from flask import url_for

from app.core.errors import NotFound
from app.core.errors import RobotError
from app.core.errors import Unauthorized
from app.core.wikis import clean_display_name
from app.manage import html
from app.manage import service as management
from app.web.flask_app import current_platform

bp = Blueprint("pages", __name__, template_folder="templates")
html.protect(bp, public=("pages.landing",))
_NEW_WIKI = {"slug": "", "display_name": "", "visibility": "private"}


@bp.get("/")
def landing():
    try:
        g.manager = html.signed_in_manager()
    except Unauthorized:
        return html.render("manage/landing.html")
    return redirect(url_for(".dashboard"), 303)


@bp.get("/app/")
def dashboard():
    return _dashboard()


def _dashboard(status: int = 200, errors: dict | None = None, values: dict | None = None):
    wikis = management.list_wikis(current_platform(), g.manager)
    return html.render(
        "manage/dashboard.html",
        status,
        mine=[wiki for wiki in wikis if wiki["owner"] == g.manager.did],
        shared=[wiki for wiki in wikis if wiki["owner"] != g.manager.did],
        errors=errors or {},
        values={**_NEW_WIKI, **(values or {})},
    )


@bp.post("/app/wikis")
def create_wiki():
    form = html.checked_form()
    platform = current_platform()
    slug = form.get("slug", "").lower()
    for field, check in (
        ("slug", lambda: management.check_new_slug(platform, slug)),
        ("display_name", lambda: clean_display_name(form.get("display_name"), slug)),
        ("slug", lambda: management.create_wiki(platform, g.manager, _new_wiki(form, slug))),
    ):
        try:
            check()
        except html.INPUT_ERRORS as error:
            return _dashboard(error.status, {field: error.message}, form)
    flash(f"Your wiki “{slug}” is ready.")
    return redirect(url_for("wiki_pages.settings", slug=slug), 303)


def _new_wiki(form: dict, slug: str) -> dict:
    return {
        "slug": slug,
        "display_name": form.get("display_name", ""),
        "public": form.get("visibility") == "public",
    }


@bp.get("/app/<path:rest>")
def missing(rest):
    """Answer an unknown page under /app/ as a page (other routes of the api answer JSON)."""
    raise NotFound(f"there is no page at /app/{rest}")


@bp.get("/app/check-slug")
def check_slug():
    """Say whether a new wiki could take `?slug=` (the create form asks as the user types)."""
    slug = request.args.get("slug", "")[:100]
    try:
        management.check_new_slug(current_platform(), slug)
    except RobotError as error:
        return {"ok": True, "slug": slug, "available": False, "problem": error.message}
    return {"ok": True, "slug": slug, "available": True, "problem": None}
