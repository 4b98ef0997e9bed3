"""The browser session cookie: host-only, HttpOnly, SameSite=Lax, and `__Host-` under https.

Every host (the apex, each wiki host) holds its own credential in its own cookie; no cookie is
ever set for the parent domain, so a page on one wiki can neither read, use nor overwrite the
session of another (AUTH_FACTS "Tokens and sessions"). A `__Host-` cookie must be Secure, have
Path=/ and no Domain attribute, so browsers refuse one set by a sibling host (RFC 6265bis §4.1.3.2).
"""

from __future__ import annotations

from collections.abc import Mapping

from app.core.settings import Settings

PLAIN_NAME = "robot_session"
HOST_PREFIXED_NAME = "__Host-robot_session"


def cookie_name(settings: Settings) -> str:
    """The session cookie's name: `__Host-robot_session` under https, else `robot_session`."""
    return HOST_PREFIXED_NAME if settings.cookie_secure else PLAIN_NAME


def session_secret(cookies: Mapping[str, str], settings: Settings) -> str | None:
    """The session credential in a request's parsed cookies, or None."""
    value = cookies.get(cookie_name(settings))
    return value or None


def set_session_cookie(response, settings: Settings, secret: str) -> None:
    """Set the session cookie on a Flask/werkzeug `response` for the request's own host only.

    Max-Age is the session lifetime (settings.session_ttl seconds); the server decides whether
    the credential is still live on every request, so a logout ends it whatever the browser keeps.
    """
    response.set_cookie(
        cookie_name(settings),
        secret,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="Lax",
        max_age=settings.session_ttl,
    )


def clear_session_cookie(response, settings: Settings) -> None:
    """Delete the session cookie of the request's own host on a Flask/werkzeug `response`."""
    response.delete_cookie(
        cookie_name(settings),
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="Lax",
    )
