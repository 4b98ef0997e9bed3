"""The session handoff's addresses: how a wiki host asks the auth service for a session.

A wiki host never shares a cookie with the apex (AUTH_FACTS "Tokens and sessions"). A browser
without a session on `{slug}.{domain}` is sent to the auth service's WIKI_SESSION_PATH; when it
is signed in there, the auth service sends it back to the wiki's REDEEM_PATH with a short-lived
single-use code bound to that host, which the wiki service trades for its own host-only cookie.
Both services build and check these URLs here, so neither imports the other.
"""

from __future__ import annotations

from urllib.parse import urlencode
from urllib.parse import urlsplit

from app.core.redirects import safe_return_to
from app.core.settings import Settings
from app.core.slugs import slug_from_host

WIKI_SESSION_PATH = "/auth/wiki-session"
# In Otterwiki's own `/-/` namespace, so no page name can collide with it.
REDEEM_PATH = "/-/robot/session"
LOGOUT_PATH = "/auth/logout"
# `reason` values a wiki host sends along; the pages of the auth service say them in words.
REASON_EXPIRED = "expired"
REASONS = frozenset({REASON_EXPIRED})


def wiki_origin(settings: Settings, slug: str) -> str:
    """The wiki's origin, `{scheme}://{slug}.{domain}[:port]`, without a trailing slash."""
    return settings.wiki_url(slug).rstrip("/")


def slug_of_wiki_host(settings: Settings, host: str | None) -> str | None:
    """The slug of a bare wiki host name (`alpha.example.org`, no port), or None."""
    name = (host or "").strip().lower()
    if not name or len(name) > 253:
        return None
    slug = slug_from_host(name, settings.platform_domain)
    if slug is None or name != settings.wiki_host(slug):
        return None
    return slug


def on_wiki(settings: Settings, slug: str, url: str | None) -> str | None:
    """`url` if it is a safe platform URL (app.core.redirects) on wiki `slug`'s own origin
    (scheme, host and port exactly the wiki's), else None."""
    safe = safe_return_to(settings, url, "")
    if not safe:
        return None
    parts = urlsplit(safe)
    if f"{parts.scheme}://{parts.netloc.lower()}" != wiki_origin(settings, slug):
        return None
    return safe


def wiki_session_url(
    settings: Settings, slug: str, return_to: str | None = None, reason: str | None = None
) -> str:
    """The auth service's URL that gives the browser a session on wiki `slug`, then sends it to
    `return_to` (only when it is on that wiki; else the wiki's home page). `reason` (one of
    REASONS) says why, for the page shown when the browser must sign in first."""
    query = {
        "host": settings.wiki_host(slug),
        "return_to": on_wiki(settings, slug, return_to) or settings.wiki_url(slug),
    }
    if reason in REASONS:
        query["reason"] = reason
    return f"{settings.auth_origin}{WIKI_SESSION_PATH}?{urlencode(query)}"


def redeem_url(settings: Settings, slug: str, code: str, return_to: str | None) -> str:
    """The wiki host's URL that trades handoff `code` for its own session cookie, then goes on
    to `return_to` when that is on the same wiki (else the wiki's home page)."""
    query = {
        "code": code,
        "return_to": on_wiki(settings, slug, return_to) or settings.wiki_url(slug),
    }
    return f"{wiki_origin(settings, slug)}{REDEEM_PATH}?{urlencode(query)}"
