"""Where a browser may be sent after signing in or out: the platform's own hosts, nothing else.

`return_to` arrives in query strings and forms, so it is hostile: an open redirect would let a
phishing link borrow the platform's name. Only absolute URLs are accepted, with the platform's
scheme, the apex or a valid wiki host, and (locally) one of the services' ports. Anything a
browser might parse differently from Python (backslashes, control characters, spaces, user
info) is refused outright rather than normalised (WHATWG URL vs RFC 3986 differences).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from app.core.settings import Settings
from app.core.slugs import slug_from_host

MAX_RETURN_TO = 2000
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


def safe_return_to(settings: Settings, url: str | None, default: str) -> str:
    """Return `url` if it leads to one of the platform's own hosts, else `default`.

    Accepted: an absolute `{scheme}://{host}[:port]/...` URL whose scheme is the platform's,
    whose host is the apex (PLATFORM_DOMAIN) or `{slug}.{domain}` for a valid slug, and whose
    port is none behind the proxy (https) or one of the four service ports locally.
    """
    if not url or len(url) > MAX_RETURN_TO or _UNSAFE.search(url):
        return default
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return default
    if parts.scheme != settings.public_scheme or not parts.netloc or "@" in parts.netloc:
        return default
    host = (parts.hostname or "").lower()
    if host.endswith("."):
        return default  # a different cookie host from the same name without the dot
    if host != settings.platform_domain and slug_from_host(host, settings.platform_domain) is None:
        return default
    if settings.behind_proxy:
        allowed_ports = {None, 443}
    else:
        allowed_ports = {
            settings.wiki_port,
            settings.mcp_port,
            settings.api_port,
            settings.auth_port,
        }
    if port not in allowed_ports:
        return default
    return url
