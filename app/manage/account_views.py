"""The account JSON API under /api/account: who you are, your sessions, deleting it all."""

from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import jsonify
from flask import request

from app.manage import account
from app.manage import service as management
from app.web.flask_app import current_platform
from app.web.flask_app import json_body
from app.web.session_cookie import clear_session_cookie
from app.web.session_cookie import session_secret

bp = Blueprint("account", __name__, url_prefix="/api/account")


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
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("")
def get_account():
    return account.account_summary(current_platform(), g.manager)


@bp.delete("")
def delete_account():
    platform = current_platform()
    deleted = account.delete_account(platform, g.manager, json_body().get("confirm"))
    response = jsonify({"ok": True, **deleted})
    if g.manager.via == "cookie":
        clear_session_cookie(response, platform.settings)  # the session went with the account
    return response


@bp.get("/sessions")
def list_sessions():
    return {"sessions": account.list_account_sessions(current_platform().store, g.manager)}


@bp.delete("/sessions/<session_id>")
def end_session(session_id):
    platform = current_platform()
    was_current = account.end_account_session(platform.store, g.manager, session_id)
    response = jsonify({"ok": True, "ended": session_id})
    if was_current:
        clear_session_cookie(response, platform.settings)  # this browser is signed out now
    return response
