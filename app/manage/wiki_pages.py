"""A wiki's settings page at /app/wiki/<slug>: name, visibility, members, tokens, MCP, delete."""

from __future__ import annotations

import json

from flask import Blueprint
from flask import flash
from flask import g
from flask import redirect
from flask import url_for

from app.core import handoff
from app.core.errors import BadRequest
from app.manage import html
from app.manage import service as management
from app.web.flask_app import current_platform

bp = Blueprint("wiki_pages", __name__, url_prefix="/app/wiki", template_folder="templates")
html.protect(bp)


@bp.get("/<slug>")
def settings(slug):
    return _page(slug)


def _page(slug: str, status: int = 200, errors: dict | None = None, values: dict | None = None):
    platform = current_platform()
    wiki = management.get_wiki(platform, g.manager, slug)
    admin = wiki["role"] == "admin"
    return html.render(
        "manage/wiki.html",
        status,
        wiki=wiki,
        roles=html.ROLES,
        members=management.list_members(platform, g.manager, slug) if admin else [],
        tokens=management.list_tokens(platform, g.manager, slug) if admin else [],
        errors=errors or {},
        values=values or {},
        header_config=_header_config(wiki, "<token>"),
        exports=_export_links(wiki),
    )


def _attempt(slug: str, field: str, form: dict, action, body: dict):
    """Call the service's `action` with `body`; on its error, show the page again with the
    message next to `field` and the user's input kept."""
    try:
        return action(current_platform(), g.manager, slug, body), None
    except html.INPUT_ERRORS as error:
        return None, _page(slug, error.status, {field: error.message}, form)


@bp.post("/<slug>/settings")
def update(slug):
    form = html.checked_form()
    if "display_name" not in form or form.get("visibility") not in ("public", "private"):
        # Never read a missing field as "private" or "no name": that would change the wiki.
        message = "send both the display name and the visibility (public or private)"
        return _page(slug, BadRequest.status, {"display_name": message}, form)
    body = {"display_name": form["display_name"], "public": form["visibility"] == "public"}
    _, failed = _attempt(slug, "display_name", form, management.update_wiki, body)
    if failed:
        return failed
    flash("Settings saved.")
    return _back(slug)


@bp.post("/<slug>/git")
def set_git_access(slug):
    form = html.checked_form()
    body = {"git_access": form.get("git_access") == "on"}  # an unticked box sends nothing
    _, failed = _attempt(slug, "git_access", form, management.update_wiki, body)
    if failed:
        return failed
    flash("Git access is on." if body["git_access"] else "Git access is off.")
    return _back(slug)


@bp.post("/<slug>/members")
def set_member(slug):
    form = html.checked_form()
    body = {"member": form.get("member", ""), "role": form.get("role", "")}
    field = "members" if form.get("from") == "list" else "member"  # a role change, or an add
    added, failed = _attempt(slug, field, form, management.set_member, body)
    if failed:
        return failed
    flash(f"{added[0]['handle'] or added[0]['did']} is now {added[0]['role']} of this wiki.")
    return _back(slug)


@bp.post("/<slug>/members/<path:did>/remove")
def remove_member(slug, did):
    html.checked_form()
    management.remove_member(current_platform(), g.manager, slug, did)
    if did == g.manager.did:  # an admin who left: the settings page is no longer theirs
        flash(f"You are no longer a member of “{slug}”.")
        return redirect(url_for("pages.dashboard"), 303)
    flash(f"{did} is no longer a member; their tokens and agent connections here are revoked.")
    return _back(slug)


@bp.post("/<slug>/tokens")
def create_token(slug):
    form = html.checked_form()
    body = {"label": form.get("label", ""), "role": form.get("role", "")}
    created, failed = _attempt(slug, "label", form, management.create_token, body)
    if failed:
        return failed
    # Not Post/Redirect/Get: the secret is shown on this one answer (no-store) and kept nowhere.
    return html.render(
        "manage/token_created.html",
        wiki=management.get_wiki(current_platform(), g.manager, slug),
        created=created,
        header_config=_header_config(created, created["secret"], slug),
    )


@bp.post("/<slug>/tokens/<token_id>/revoke")
def revoke_token(slug, token_id):
    html.checked_form()
    token = management.revoke_token(current_platform(), g.manager, slug, token_id)
    flash(f"Token “{token['label'] or token['id']}” is revoked; it stopped working at once.")
    return _back(slug)


@bp.post("/<slug>/delete")
def delete(slug):
    form = html.checked_form()
    if form.get("confirm") != slug:
        message = f"type the wiki's name, {slug}, to delete it"
        return _page(slug, BadRequest.status, {"confirm": message}, form)
    management.delete_wiki(current_platform(), g.manager, slug)
    flash(f"The wiki “{slug}” is deleted, with its pages, history, members and tokens.")
    return redirect(url_for("pages.dashboard"), 303)


def _back(slug: str):
    return redirect(url_for(".settings", slug=slug), 303)


def _header_config(wiki: dict, secret: str, name: str | None = None) -> str:
    """The JSON an MCP client that sends a header (not OAuth) is configured with."""
    server = {
        "type": "http",
        "url": wiki["mcp_url"],
        "headers": {"Authorization": f"Bearer {secret}"},
    }
    return json.dumps({"mcpServers": {name or wiki["slug"]: server}}, indent=2)


def _export_links(wiki: dict) -> dict[str, str]:
    """Download links per format: through the session handoff, so the browser is signed in on
    the wiki's host (where the download is) before it asks for the file."""
    settings = current_platform().settings
    return {
        fmt: handoff.wiki_session_url(settings, wiki["slug"], f"{wiki['export_url']}?format={fmt}")
        for fmt in ("zip", "tar.gz")
    }
