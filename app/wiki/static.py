"""Otterwiki's own static files (CSS, scripts, fonts), served without waking Otterwiki's app.

They are the same package files for every wiki, so they need no wiki, no caller and none of
the per-process switch that page views take: werkzeug's SharedDataMiddleware answers them
(ETag, Last-Modified, 304 on a match) with the security headers Otterwiki puts on every
response. The few files the platform adds or changes (MathJax's component with its safe
configuration, the platform's handlers.js) are answered from memory the same way. Anything it
does not find (or a method other than GET and HEAD) goes to Otterwiki, which answers as it
always did. None takes a wiki's turn (app.wiki.turns): a browser fetches them beside every
page, while the page's own request may still hold its pool's turn.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
from collections.abc import Mapping

from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.security import safe_join
from werkzeug.utils import send_file

from app.core.errors import NotFound

STATIC_PREFIX = "/static"
# What Otterwiki's /favicon.ico sends (views.favicon): a package file, the same for every wiki.
FAVICON_FILE = f"{STATIC_PREFIX}/img/otter-favicon.ico"
# Otterwiki's set_security_headers (server.py) adds these to every response it sends.
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Referrer-Policy", "same-origin"),
]
_FALLBACK = "robot.static.fallback"


def static_files(
    folder: str,
    fallback,
    security_headers: bool = True,
    generated: Mapping[str, bytes | None] = {},
):
    """Return a WSGI app serving `folder` under /static/, else calling `fallback`.

    `folder` is Otterwiki's `app.static_folder`; `fallback` a WSGI app (the gateway's own way
    to Otterwiki); `generated` maps paths under /static/ to the bytes served there instead of
    the file (with a content ETag), or to None for a file never served (NotFound). A path is
    looked up as the file it names (werkzeug.security.safe_join, as SharedDataMiddleware
    resolves it): `mathjax//tex-chtml.js` served the package's file instead of the changed one
    (twenty-first review). Files are revalidated on every use (max-age=0), as Flask's static
    route asks with `no-cache`, so a new Otterwiki's files show at once.

    Raises NotFound for a withheld file; werkzeug's RequestedRangeNotSatisfiable (416) for a
    Range past the end of a generated file.
    """
    extra = SECURITY_HEADERS if security_headers else []
    changed = {
        os.path.join(folder, name): body and (body, hashlib.sha256(body).hexdigest()[:32])
        for name, body in generated.items()
    }

    def otherwise(environ, start_response):
        environ[_FALLBACK] = True
        return fallback(environ, start_response)

    shared = SharedDataMiddleware(otherwise, {STATIC_PREFIX: folder}, cache_timeout=0)

    def app(environ, start_response):
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return fallback(environ, start_response)

        def start(status, headers, exc_info=None):
            if not environ.get(_FALLBACK):
                headers = headers + extra
            return start_response(status, headers, exc_info)

        # As Werkzeug routes it: `//static/...` is the static route too, and SharedDataMiddleware
        # passed it to Otterwiki's view, which served withheld files (twenty-second review).
        path = "/" + environ.get("PATH_INFO", "").lstrip("/")
        inside = path.startswith(STATIC_PREFIX + "/")
        file = safe_join(folder, path[len(STATIC_PREFIX) + 1 :]) if inside else None
        if file not in changed:
            return shared(environ, start)
        if changed[file] is None:
            raise NotFound(f"there is no {path} on this platform")
        body, etag = changed[file]
        mimetype = mimetypes.guess_type(file)[0] or "application/octet-stream"
        answer = send_file(io.BytesIO(body), environ, mimetype, etag=etag, max_age=0)
        return answer(environ, start)

    return app
