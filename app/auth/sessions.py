"""Browser sign-in on the apex: start a server-side session, read it back, end it.

The apex (auth and api services) holds its own host-only cookie; wiki hosts get theirs through
a handoff (app.core.session_store). Nothing here ever sets a cookie for the parent domain.
"""

from __future__ import annotations

from flask import redirect
from flask import request

from app.core.redirects import safe_return_to
from app.core.session_store import Session
from app.web.flask_app import current_platform
from app.web.session_cookie import session_secret
from app.web.session_cookie import set_session_cookie

MAX_USER_AGENT = 300


SIGNED_IN_PATH = "/auth/signed-in"


def default_landing() -> str:
    """Where a signed-in browser goes when it did not ask for anywhere: the dashboard."""
    return current_platform().settings.dashboard_url


def begin_browser_session(did: str, handle: str, upstream: dict | None, return_to: str | None):
    """Start a session for user `did` (already upserted) and send the browser on its way.

    Creates the server-side session (lifetime settings.session_ttl seconds) with `upstream`
    (the ATProto token set, kept for revocation at logout), sets the apex cookie, and answers
    303 to `return_to` when it is one of the platform's own URLs, else to the dashboard.
    Returns a Flask response. `handle` is informational (the users row holds the current one).
    """
    platform = current_platform()
    settings = platform.settings
    # Sign-ins are rare next to requests: a good moment to drop long-dead session rows.
    platform.store.purge_sessions()
    _session, secret = platform.store.create_session(
        did,
        settings.platform_domain,
        settings.session_ttl,
        user_agent=request.headers.get("User-Agent", "")[:MAX_USER_AGENT],
        upstream=upstream,
    )
    response = redirect(safe_return_to(settings, return_to, default_landing()), code=303)
    set_session_cookie(response, settings, secret)
    response.headers["Cache-Control"] = "no-store"
    return response


def current_apex_session() -> Session | None:
    """The live session of the current request's apex cookie, or None (no cookie, or a cookie
    that is unknown, ended, expired or was issued for another host)."""
    platform = current_platform()
    secret = session_secret(request.cookies, platform.settings)
    if secret is None:
        return None
    return platform.store.session_for_secret(secret, platform.settings.platform_domain)
