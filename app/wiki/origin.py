"""Same-origin proof for writes to the page API that ride on a browser's cookie.

Every wiki host is a subdomain of the platform's domain, so `a.localhost` and `b.localhost` are
the same *site*: a page on wiki B can POST a form to wiki A and the browser sends A's SameSite=Lax
cookie along. A multipart or text/plain POST needs no CORS preflight, so the page API itself must
tell such a request from one made by A's own pages. Bearer credentials are never sent by a
browser on its own, so only cookie-borne writes are checked.
"""

from __future__ import annotations

from collections.abc import Mapping

# Fetch Metadata (https://www.w3.org/TR/fetch-metadata/): "none" is a request the user made
# directly (typed URL, bookmark), "same-origin" one made by this very origin's pages.
_TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})


def cross_site_refusal(headers: Mapping[str, str], own_origin: str) -> str | None:
    """Return why a cookie-authenticated write must be refused, or None when it may go on.

    `headers` are the request's (case-insensitive, e.g. werkzeug's), `own_origin` the wiki's
    public origin ("http://alpha.localhost:8000", no trailing slash). Browsers that send
    `Sec-Fetch-Site` are judged by it; older ones by `Origin` (sent on every cross-origin and
    every non-GET request); a request with neither is no browser's and must use a token.
    """
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        if site.strip().lower() in _TRUSTED_FETCH_SITES:
            return None
        return (
            f"this {site} request carries only a browser cookie; writes with a cookie must come "
            "from this wiki's own pages (send a Bearer token otherwise)"
        )
    origin = headers.get("Origin")
    if origin is None:
        return (
            "a write with a browser cookie must show where it comes from (Origin or "
            "Sec-Fetch-Site); API clients send 'Authorization: Bearer <token>' instead"
        )
    if origin.rstrip("/") != own_origin:
        return f"a write with a browser cookie from {origin[:100]} is refused: not this wiki"
    return None
