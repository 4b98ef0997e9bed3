"""The management JSON API under /api/wikis: thin views over app.manage.service."""

from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import request

from app.manage import service as management
from app.web.flask_app import current_platform
from app.web.flask_app import json_body
from app.web.session_cookie import session_secret

bp = Blueprint("management", __name__, url_prefix="/api/wikis")


@bp.before_request
def _authenticate():
    platform = current_platform()
    manager = management.authenticate_manager(
        platform,
        request.headers.get("Authorization"),
        session_secret(request.cookies, platform.settings),
    )
    management.check_same_origin(
        platform.settings, manager, request.method, request.headers.get("Origin")
    )
    g.manager = manager


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"  # members, tokens and secrets stay out of caches
    return response


@bp.get("")
def list_wikis():
    return {"wikis": management.list_wikis(current_platform(), g.manager)}


@bp.post("")
def create_wiki():
    return management.create_wiki(current_platform(), g.manager, json_body()), 201


@bp.get("/<slug>")
def get_wiki(slug):
    return management.get_wiki(current_platform(), g.manager, slug)


@bp.patch("/<slug>")
def update_wiki(slug):
    return management.update_wiki(current_platform(), g.manager, slug, json_body())


@bp.delete("/<slug>")
def delete_wiki(slug):
    management.delete_wiki(current_platform(), g.manager, slug)
    return {"ok": True, "deleted": slug}


@bp.get("/<slug>/tokens")
def list_tokens(slug):
    return {"tokens": management.list_tokens(current_platform(), g.manager, slug)}


@bp.post("/<slug>/tokens")
def create_token(slug):
    return management.create_token(current_platform(), g.manager, slug, json_body()), 201


@bp.delete("/<slug>/tokens/<token_id>")
def revoke_token(slug, token_id):
    return {"token": management.revoke_token(current_platform(), g.manager, slug, token_id)}


@bp.get("/<slug>/members")
def list_members(slug):
    return {"members": management.list_members(current_platform(), g.manager, slug)}


@bp.post("/<slug>/members")
def set_member(slug):
    member, is_new = management.set_member(current_platform(), g.manager, slug, json_body())
    return {"member": member}, 201 if is_new else 200


@bp.delete("/<slug>/members/<did>")
def remove_member(slug, did):
    management.remove_member(current_platform(), g.manager, slug, did)
    return {"ok": True, "removed": did}
