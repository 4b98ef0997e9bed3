"""The auth service's session routes for browsers: the wiki-host handoff and logout everywhere.

- `GET /auth/wiki-session?host=&return_to=[&reason=]`: a wiki host without a session sends the
  browser here. Signed in at the apex, it goes back to the wiki with a single-use code bound to
  that host (app.core.handoff); otherwise to sign in first, and back here afterwards.
- `GET /auth/logout` asks (a GET must never log anyone out: a cross-site image could);
  `POST /auth/logout` ends the session on every host at once and revokes its upstream tokens.

Every answer is a small HTML page or a 303; bad input is a 4xx page saying what was wrong.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from flask import Blueprint
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request

from app.auth.revocation import revoke_upstream_tokens
from app.auth.sessions import current_apex_session
from app.core import handoff
from app.core.errors import BadRequest
from app.web.flask_app import current_platform
from app.web.session_cookie import clear_session_cookie
from app.web.session_cookie import session_secret

bp = Blueprint("sessions", __name__, template_folder="templates")

# Our pages load only the platform's stylesheet, run nothing, and post only to themselves.
_PAGE_CSP = (
    "default-src 'none'; style-src {origin}; base-uri 'none'; frame-ancestors 'none';"
    " form-action 'self'"
)
# Shown back to the user in a refusal; longer input is cut, never echoed whole.
MAX_ECHO = 80
_EXPIRED_MESSAGE = (
    "Your session on {host} has ended: it expired, or you signed out.\nSign in again to continue."
)


def _page(status: int, title: str, message: str, links=(), form=None):
    settings = current_platform().settings
    body = render_template(
        "auth/session_page.html",
        title=title,
        message=message,
        links=links,
        form=form,
        domain=settings.platform_domain,
        stylesheet=settings.api_origin + "/static/robot.css",
    )
    headers = {
        "Content-Security-Policy": _PAGE_CSP.format(origin=settings.api_origin),
        # The page's own referrer policy (same-origin) stays: under no-referrer a browser
        # sends `Origin: null` with the logout form, which could not be told from a forgery.
        "Cache-Control": "no-store",
    }
    return body, status, headers


def _see_other(location: str):
    response = redirect(location, code=303)
    # A handoff code is in this Location for one hop: never cached, never sent on as a Referer.
    response.headers.update({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    return response


def _login_url(return_to: str) -> str:
    settings = current_platform().settings
    return f"{settings.auth_origin}/auth/login?{urlencode({'return_to': return_to})}"


def _echo(value: str | None) -> str:
    value = (value or "").strip()
    return value if len(value) <= MAX_ECHO else value[:MAX_ECHO] + "…"


@bp.get(handoff.WIKI_SESSION_PATH)
def wiki_session():
    platform = current_platform()
    settings = platform.settings
    host = request.args.get("host")
    slug = handoff.slug_of_wiki_host(settings, host)
    wiki = platform.store.find_wiki(slug) if slug else None
    if wiki is None:
        return _page(400, "No such wiki", f"There is no wiki at “{_echo(host)}” to sign in to.")
    return_to = handoff.on_wiki(settings, slug, request.args.get("return_to"))
    return_to = return_to or settings.wiki_url(slug)
    session = current_apex_session()
    if session is not None:
        try:
            code = platform.store.create_handoff(session.id, settings.wiki_host(slug))
            return _see_other(handoff.redeem_url(settings, slug, code, return_to))
        except BadRequest:  # the session ended between the two reads: sign in again
            pass
    if request.args.get("reason") in handoff.REASONS:
        return _session_ended_page(wiki, return_to)
    return _see_other(_login_url(handoff.wiki_session_url(settings, slug, return_to)))


def _session_ended_page(wiki, return_to: str):
    """Say that the wiki host's session has ended, with the way to sign in again (and, on a
    public wiki, the way on without signing in): an ended session is never dropped silently."""
    settings = current_platform().settings
    again = _login_url(handoff.wiki_session_url(settings, wiki.slug, return_to))
    links = [(again, "Sign in again", "sign-in-again")]
    if wiki.is_public:
        links.append((return_to, f"Continue to {wiki.display_name} without signing in", "go-on"))
    message = _EXPIRED_MESSAGE.format(host=settings.wiki_host(wiki.slug))
    return _page(200, "Signed out", message, links)


def logout_token(secret: str) -> str:
    """The logout form's CSRF token for the apex cookie credential `secret` (hex SHA-256 HMAC).

    Only a page that knows the HttpOnly, host-only cookie can compute it, so a form on another
    site (a sibling wiki host included) cannot post a logout; it needs no server-side state.
    """
    return hmac.new(secret.encode(), b"robot logout", hashlib.sha256).hexdigest()


@bp.get(handoff.LOGOUT_PATH)
def logout_form():
    settings = current_platform().settings
    session = current_apex_session()
    if session is None:
        home = (settings.api_origin + "/", f"Go to {settings.platform_domain}", "home")
        page = _page(200, "Signed out", "You are signed out of every wiki.", [home])
        response = make_response(page)
        if session_secret(request.cookies, settings):
            clear_session_cookie(response, settings)  # a dead apex cookie: drop it
        return response
    form = {
        "action": handoff.LOGOUT_PATH,
        "token": logout_token(session_secret(request.cookies, settings)),
        "button": "Sign out everywhere",
        "id": "sign-out",
    }
    message = (
        f"You are signed in as {session.handle}.\n"
        "Signing out ends your session on every wiki of this site at once."
    )
    return _page(200, "Sign out?", message, form=form)


@bp.post(handoff.LOGOUT_PATH)
def logout():
    platform = current_platform()
    settings = platform.settings
    secret = session_secret(request.cookies, settings)
    session = platform.store.session_for_secret(secret, settings.platform_domain)
    if session is not None:
        origin = request.headers.get("Origin")
        sent = request.form.get("csrf_token", "")
        if (origin and origin != settings.auth_origin) or not hmac.compare_digest(
            sent.encode(), logout_token(secret).encode()
        ):
            again = [(handoff.LOGOUT_PATH, "Sign out", "sign-out-again")]
            message = "This sign-out form was not ours or is stale; you are still signed in."
            return _page(403, "Not signed out", message, again)
        upstream = platform.store.session_upstream(session.id)
        platform.store.end_session(session.id)
        revoke_upstream_tokens(upstream)
    response = _see_other(handoff.LOGOUT_PATH)
    clear_session_cookie(response, settings)
    return response
