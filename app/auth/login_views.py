"""The sign-in pages: the login form, the callback from the user's server, the apex handoff."""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlencode

from flask import Blueprint
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask_wtf.csrf import CSRFError
from flask_wtf.csrf import generate_csrf
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from app.auth.atproto.login import LOGIN_REQUEST_TTL
from app.auth.atproto.login import client_for
from app.auth.atproto.login import finish_login
from app.auth.atproto.login import record_user
from app.auth.atproto.login import same_browser
from app.auth.atproto.login import start_login
from app.auth.sessions import SIGNED_IN_PATH
from app.auth.sessions import begin_browser_session
from app.auth.sessions import current_apex_session
from app.auth.sessions import default_landing
from app.core.errors import RobotError
from app.core.errors import UpstreamError
from app.core.redirects import safe_return_to
from app.web.flask_app import current_platform
from app.web.session_cookie import set_session_cookie

bp = Blueprint("login", __name__, template_folder="templates")

# Binds a sign-in to the browser that started it (host-only; __Host- under https).
SIGNIN_COOKIE = "robot_signin"
SIGNIN_COOKIE_SECURE = "__Host-robot_signin"

# The pages load only the platform stylesheet and run nothing. No form-action: the login form's
# answer redirects to the user's own authorization server, which no list can name in advance.
_PAGE_CSP = "default-src 'none'; style-src {origin}; base-uri 'none'; frame-ancestors 'none'"


def _page(template: str, status: int = 200, **context):
    settings = current_platform().settings
    body = render_template(
        template,
        domain=settings.platform_domain,
        stylesheet=settings.api_origin + "/static/robot.css",
        **context,
    )
    headers = {
        "Content-Security-Policy": _PAGE_CSP.format(origin=settings.api_origin),
        "Cache-Control": "no-store",
    }
    return body, status, headers


def _return_to(value: str | None) -> str:
    settings = current_platform().settings
    return safe_return_to(settings, value, default_landing())


def _login_form(status: int = 200, error: str | None = None, account: str = "", return_to=None):
    return _page(
        "auth/login.html",
        status,
        error=error,
        account=account[:200],
        return_to=_return_to(return_to),
        csrf_token=generate_csrf(),
    )


def _failure(error: Exception):
    """The login form again, saying in plain words what failed; never a traceback."""
    if isinstance(error, RobotError):
        return error.status, error.message
    current_app.logger.exception("sign-in failed unexpectedly")
    return UpstreamError.status, "the account's server answered something unusable"


def _failed(status: int, message: str):
    login_url = current_platform().settings.login_url()
    return _page("auth/failed.html", status, error=message, login_url=login_url)


@bp.get("/auth/login")
def login_form():
    wanted = request.args.get("return_to") or request.args.get("next")
    return _login_form(return_to=wanted)


@bp.post("/auth/login")
def login_start():
    account = request.form.get("account", "")
    return_to = request.form.get("return_to")
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (ValidationError, CSRFError):
        message = "the form expired or did not come from this site; please try again"
        return _login_form(400, message, account, return_to)
    platform = current_platform()
    browser_secret = secrets.token_urlsafe(32)
    try:
        url = start_login(
            platform.store,
            _network(),
            _client(),
            account,
            _return_to(return_to),
            browser=_hash(browser_secret),
        )
    except Exception as error:  # every failure is the user's page, never a 500
        status, message = _failure(error)
        return _login_form(status, message, account, return_to)
    response = redirect(url, 303)
    # Only this browser can finish this sign-in: the callback (or, for the loopback client,
    # the apex handoff after it) must present this cookie. SameSite=Lax still sends it on the
    # authorization server's top-level redirect back to us.
    response.set_cookie(
        _signin_cookie(),
        browser_secret,
        max_age=LOGIN_REQUEST_TTL,
        path="/",
        secure=platform.settings.cookie_secure,
        httponly=True,
        samesite="Lax",
    )
    return response


@bp.get("/auth/callback")
def callback():
    platform = current_platform()
    settings = platform.settings
    on_apex = request.host.split(":")[0] == settings.platform_domain
    try:
        signed = finish_login(
            platform.store,
            _network(),
            _client(),
            request.args,
            browser=_presented_browser(),
            check_browser=on_apex,
        )
        handle = record_user(platform.store, signed)
    except Exception as error:
        return _failed(*_failure(error))
    if on_apex:
        response = begin_browser_session(signed.did, handle, signed.upstream, signed.return_to)
        response.delete_cookie(_signin_cookie(), path="/", secure=settings.cookie_secure)
        return response
    # ATProto's loopback client returns to 127.0.0.1; the apex cookie belongs to `localhost`,
    # so the browser carries a one-time code there (see handoff below).
    session, _ = platform.store.create_session(
        signed.did,
        host=settings.platform_domain,
        ttl=settings.session_ttl,
        user_agent=request.headers.get("User-Agent", "")[:300],
        # The apex handoff checks that the browser redeeming the code started the sign-in.
        upstream={**signed.upstream, "browser": signed.browser},
    )
    code = platform.store.create_handoff(session.id, host=settings.platform_domain)
    query = urlencode({"code": code, "return_to": _return_to(signed.return_to)})
    return redirect(f"{settings.auth_origin}/auth/handoff?{query}", 303)


@bp.get("/auth/handoff")
def handoff():
    """Redeem a one-time code on the apex and set the apex's own session cookie."""
    platform = current_platform()
    settings = platform.settings
    redeemed = None
    if request.host.split(":")[0] == settings.platform_domain:
        code = request.args.get("code", "")
        redeemed = platform.store.redeem_handoff(code, settings.platform_domain) if code else None
    if redeemed is None:
        return _failed(400, "this sign-in link is unknown, used or expired; please sign in again")
    session, secret = redeemed
    upstream = platform.store.session_upstream(session.id) or {}
    if not same_browser(upstream.get("browser"), _presented_browser()):
        platform.store.end_session(session.id)
        return _failed(
            400, "this sign-in was started in another browser; start it again from this one"
        )
    response = redirect(_return_to(request.args.get("return_to")), 303)
    set_session_cookie(response, settings, secret)
    response.delete_cookie(_signin_cookie(), path="/", secure=settings.cookie_secure)
    return response


@bp.get(SIGNED_IN_PATH)
def signed_in():
    session = current_apex_session()
    if session is None:
        return redirect(current_platform().settings.login_url(), 303)
    dashboard = current_platform().settings.dashboard_url
    return _page(
        "auth/signed_in.html", handle=session.handle, did=session.user_did, dashboard=dashboard
    )


def _signin_cookie() -> str:
    secure = current_platform().settings.cookie_secure
    return SIGNIN_COOKIE_SECURE if secure else SIGNIN_COOKIE


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _presented_browser() -> str | None:
    secret = request.cookies.get(_signin_cookie())
    return _hash(secret) if secret and len(secret) <= 200 else None


def _network():
    return current_app.extensions["robot_atproto_network"]


def _client():
    return client_for(current_platform().settings, current_app.extensions["robot_client_key"])
