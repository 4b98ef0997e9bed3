"""The account page at /app/account: who I am, where I am signed in, deleting my account."""

from __future__ import annotations

from flask import Blueprint
from flask import flash
from flask import g
from flask import redirect
from flask import url_for

from app.manage import account
from app.manage import html
from app.web.flask_app import current_platform
from app.web.session_cookie import clear_session_cookie

bp = Blueprint("account_pages", __name__, url_prefix="/app/account", template_folder="templates")
html.protect(bp)


@bp.get("")
def show():
    return _page()


def _page(status: int = 200, errors: dict | None = None, values: dict | None = None):
    platform = current_platform()
    return html.render(
        "manage/account.html",
        status,
        summary=account.account_summary(platform, g.manager),
        sessions=account.list_account_sessions(platform.store, g.manager),
        errors=errors or {},
        values=values or {},
    )


@bp.post("/sessions/<session_id>/end")
def end_session(session_id):
    html.checked_form()
    platform = current_platform()
    if not account.end_account_session(platform.store, g.manager, session_id):
        flash("That session is ended: the browser or agent using it is signed out.")
        return redirect(url_for(".show"), 303)
    flash("You ended this browser's session, so you are signed out.")
    return _signed_out()


@bp.post("/delete")
def delete():
    form = html.checked_form()
    platform = current_platform()
    try:
        deleted = account.delete_account(platform, g.manager, form.get("confirm", ""))
    except html.INPUT_ERRORS as error:
        return _page(error.status, {"confirm": error.message}, form)
    gone = ", ".join(deleted["wikis"]) or "none"
    flash(f"Your account is deleted, and with it the wikis you owned ({gone}).")
    return _signed_out()


def _signed_out():
    response = redirect(url_for("pages.landing"), 303)
    clear_session_cookie(response, current_platform().settings)
    return response
