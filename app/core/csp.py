"""The platform's Content-Security-Policy and companion headers, shared by all four services.

Pages may run scripts only from their own origin plus the inline blocks that carry this
response's nonce; no inline event handler, `eval`, plugin object or foreign `<base>` can run
(CSP Level 3, https://www.w3.org/TR/CSP3/). Uploaded files get a sandbox policy instead, so a
script inside an uploaded HTML or SVG file never runs and never shares the wiki's origin.
"""

from __future__ import annotations

import secrets

# Otterwiki's YouTube embed (renderer_embeddings) frames only these two hosts.
_FRAME_SOURCES = "https://www.youtube.com https://www.youtube-nocookie.com"
_DIRECTIVES = (
    "default-src 'self'",
    "img-src 'self' data: https:",
    # MathJax 4 (Otterwiki's math) ships without its fonts and loads them from this CDN.
    "font-src 'self' data: https://cdn.jsdelivr.net",
    f"frame-src {_FRAME_SOURCES}",
    # MathJax 4 starts its speech engine (static/mathjax/sre) in a worker made from a blob: URL;
    # only script already running on the page can make one.
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'self'",
)
# What raw.githubusercontent.com sends for user files: a unique opaque origin, nothing loads
# but the document itself; an image opened directly still displays.
ATTACHMENT_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'"
# What a server answers itself for a request it refuses (app/core/server_errors.py): plain
# text, so nothing loads and nothing frames it.
ERROR_POLICY = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'"
# Same-origin requests keep their Referer (Flask-WTF checks it on HTTPS form posts); other
# origins learn nothing of the page a link was followed from.
REFERRER_POLICY = "same-origin"
# The JavaScript MIME types (WHATWG MIME Sniffing, "JavaScript MIME type"): an upload of one is
# sent as text/plain, which under nosniff no browser runs as a script or worker, whatever a
# policy allows (review 39: an uploaded .js came as text/javascript).
SCRIPT_MIME_TYPES = frozenset(
    {
        *("application/ecmascript", "application/javascript", "application/x-ecmascript"),
        *("application/x-javascript", "text/ecmascript", "text/javascript", "text/jscript"),
        *(f"text/javascript1.{minor}" for minor in range(6)),
        *("text/livescript", "text/x-ecmascript", "text/x-javascript"),
    }
)
# And the one type a browser applies as a stylesheet (CSSOM, "Fetching CSS style sheets":
# under nosniff nothing else is), which page-wide could read the page by attribute selectors.
ACTIVE_MIME_TYPES = SCRIPT_MIME_TYPES | {"text/css"}
NONCE_BYTES = 18


def new_nonce() -> str:
    """A fresh nonce for one response: 24 URL-safe base64 characters (18 random bytes)."""
    return secrets.token_urlsafe(NONCE_BYTES)


def page_policy(
    nonce: str | None = None,
    form_action: tuple[str, ...] = (),
    scripts_under: str | None = None,
    styles_also: tuple[str, ...] = (),
) -> str:
    """The Content-Security-Policy header value for an HTML page.

    `nonce` (from `new_nonce`) admits inline `<script nonce=...>` blocks of this one response;
    without it only same-origin script files run. `form_action` (CSP source expressions such
    as `'self'` or an origin) limits where forms post and where those posts may redirect; empty
    leaves it open, for services whose sign-in forms redirect to other origins.
    `scripts_under` (an absolute URL ending in `/`, such as `http://alpha.localhost:8000/static/`)
    narrows script files from the whole origin to that path: a wiki serves its users' uploads
    from its own origin, and an uploaded `.js` must never count as the platform's script.
    Stylesheets are narrowed to the same path, plus `styles_also` (absolute URLs of single
    files): an uploaded `.css` must never style the page either, through a `<link>` or an
    `@import` in some inline style (review 63: a diagram's style element imported one, and
    with it could restyle and read the whole page by attribute selectors).
    Inline styles stay allowed: Otterwiki and its libraries (halfmoon, CodeMirror, MathJax,
    mermaid) set them everywhere, and a style cannot run script.
    """
    source = scripts_under or "'self'"
    scripts = f"script-src {source} 'nonce-{nonce}'" if nonce else f"script-src {source}"
    styles = " ".join(("style-src", source, *styles_also, "'unsafe-inline'"))
    extra = ("form-action " + " ".join(form_action),) if form_action else ()
    return "; ".join((*_DIRECTIVES, scripts, styles, *extra))


def inert_mimetype(mimetype: str) -> str:
    """The type to send an uploaded file of `mimetype` (an essence, e.g. "text/javascript")
    as: text/plain for a script's or a stylesheet's type (ACTIVE_MIME_TYPES), else
    `mimetype`."""
    return "text/plain" if mimetype.strip().lower() in ACTIVE_MIME_TYPES else mimetype


def security_headers(policy: str) -> dict[str, str]:
    """The headers every robot response carries, with `policy` as its Content-Security-Policy."""
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": REFERRER_POLICY,
    }
