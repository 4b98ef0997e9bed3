"""What every management page shares: the signed-in manager, checked forms, rendering, errors.

The pages call the same service functions as the JSON API (app.manage.service, .account); only
the answer differs. A page needs the apex session cookie (no Bearer: a browser sends none), a
form post also needs its CSRF token (Flask-WTF, kept in the api's own signed cookie) and the
platform's Origin, exactly as a cookie-driven change of the JSON API does. A service error is
a page with its message and status (never a 500); a form's own problems are shown next to the
field by the view that re-renders it.
"""

from __future__ import annotations

import time

from flask import Flask
from flask import current_app
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask_wtf.csrf import CSRFError
from flask_wtf.csrf import generate_csrf
from flask_wtf.csrf import validate_csrf
from werkzeug.exceptions import HTTPException
from wtforms import ValidationError

from app.core.csp import page_policy
from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import RobotError
from app.core.errors import Unauthorized
from app.core.errors import UpstreamError
from app.core.errors import error_headers
from app.core.redirects import safe_return_to
from app.core.settings import Settings
from app.core.signing import derive_secret
from app.manage import service as management
from app.web.flask_app import current_platform
from app.web.flask_app import http_error_response
from app.web.flask_app import load_or_exit
from app.web.session_cookie import session_secret

ROLES = ("admin", "editor", "viewer")
# Service errors about what the user typed (or the handle they typed, which ATProto could not
# resolve), shown next to the field; others are a page.
INPUT_ERRORS = (BadRequest, Conflict, UpstreamError)
# How long a page's forms stay valid: a tab left open over lunch still works, a week-old one not.
FORM_TIME_LIMIT = 12 * 3600
_TITLES = {400: "Not done", 401: "Sign in", 403: "Not allowed", 404: "Not found", 409: "Conflict"}
# The sign-in (server-side session id) this browser's forms were made for.
_SIGNED_IN_AS = "signed_in_as"
STALE_FORM = (
    "This form is out of date or did not come from this site, so nothing was changed. "
    "Go back, reload the page and try again."
)


class FormRejected(BadRequest):
    """A post whose CSRF token is missing, forged or expired: nothing is done."""


def init_app(app: Flask, settings: Settings) -> None:
    """Give the api app what its pages need: a CSRF secret, its own cookie, template filters."""
    app.secret_key = load_or_exit("api", derive_secret, settings.secret_key_path, "api-csrf")
    app.config.update(
        # Not auth's robot_csrf: both services share the apex host, so their cookies too.
        SESSION_COOKIE_NAME="__Host-robot_app" if settings.cookie_secure else "robot_app",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=FORM_TIME_LIMIT,
    )
    app.jinja_env.filters["when"] = format_time
    app.register_error_handler(HTTPException, _page_or_json_error)


def _page_or_json_error(error: HTTPException):
    """A routing error (405, 413, ...) of a page is a page; of the JSON API, JSON as before.
    Pages are `/` and everything under `/app/` except the slug check the create form calls."""
    page = request.path == "/" or request.path.startswith("/app/")
    if not page or request.path == "/app/check-slug" or error.code is None:
        return http_error_response(error)
    message = error.description or error.name
    if error.code == 405:
        message = f"This page cannot be asked for with {request.method}."
    response = current_app.make_response(
        render(
            "manage/message.html",
            error.code,
            title=error.name,
            message=message,
            back=current_platform().settings.dashboard_url,
        )
    )
    response.headers.extend(
        (name, value) for name, value in error.get_headers() if name.lower() == "allow"
    )
    return response


def protect(bp, public: tuple[str, ...] = ()) -> None:
    """Make every view of `bp` (but the endpoints in `public`) need a signed-in browser."""

    @bp.before_request
    def _sign_in_required():
        if request.endpoint not in public:
            g.manager = signed_in_manager()

    bp.register_error_handler(RobotError, error_page)
    bp.after_request(_no_store)


def signed_in_manager() -> management.Manager:
    """The apex session's manager; raises Unauthorized (a redirect to sign in) without one."""
    platform = current_platform()
    return management.authenticate_manager(
        platform, None, session_secret(request.cookies, platform.settings)
    )


def _forms_bound_to(manager: management.Manager) -> bool:
    """Whether this browser's forms were made for `manager`'s sign-in; if not, bind them now.

    Flask-WTF keeps one CSRF secret per browser cookie, which outlives a sign-in: a tab left
    open by one person would still post after another signs in on the same browser (found by
    review), and flashed messages would carry over. A new sign-in starts the cookie afresh,
    so every form made before it is refused as stale."""
    if session.get(_SIGNED_IN_AS) == manager.session_id:
        return True
    session.clear()
    session[_SIGNED_IN_AS] = manager.session_id
    return False


def checked_form() -> dict:
    """The posted form, once its CSRF token and its Origin say it comes from our own page,
    made for this sign-in; raises FormRejected (400) or Forbidden (another origin)."""
    settings = current_platform().settings
    management.check_same_origin(settings, g.manager, request.method, request.headers.get("Origin"))
    if not _forms_bound_to(g.manager):
        raise FormRejected(STALE_FORM)
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (ValidationError, CSRFError):
        raise FormRejected(STALE_FORM) from None
    return {name: value.strip() for name, value in request.form.items() if name != "csrf_token"}


def render(template: str, status: int = 200, **context):
    """Render a page of the management UI with what every page's layout needs."""
    settings = current_platform().settings
    manager = getattr(g, "manager", None)
    if manager is not None:
        _forms_bound_to(manager)  # before generate_csrf: a new sign-in gets a new secret
    body = render_template(
        template,
        domain=settings.platform_domain,
        settings=settings,
        manager=manager,
        csrf_token=generate_csrf(),
        login_url=settings.login_url(return_to=settings.dashboard_url),
        logout_url=settings.auth_origin + "/auth/logout",
        **context,
    )
    # Forms post to these pages only; a post whose session ended is sent on to sign in.
    policy = page_policy(form_action=("'self'", settings.auth_origin))
    return body, status, {"Content-Security-Policy": policy}


def error_page(error: RobotError):
    """Answer a service error as a page: sign in for 401, else its message and status."""
    settings = current_platform().settings
    if isinstance(error, Unauthorized):
        # Built from the public origin: behind the proxy, request.url says http://.
        here = settings.api_origin + request.full_path.rstrip("?")
        wanted = here if request.method == "GET" else settings.dashboard_url
        return redirect(settings.login_url(return_to=wanted), 303)
    title = _TITLES.get(error.status, "Not done")
    back = safe_return_to(settings, request.referrer, settings.dashboard_url)
    body, status, headers = render(
        "manage/message.html", error.status, title=title, message=error.message, back=back
    )
    return body, status, {**headers, **error_headers(error)}


def format_time(seconds: int | None) -> str:
    """A Unix time as the pages show it: `2026-12-01 07:50 UTC`, or `never`."""
    if not seconds:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"  # members, tokens and secrets stay out of caches
    return response
