"""Otterwiki's own static files (CSS, scripts, fonts), served without waking Otterwiki's app.

They are the same package files for every wiki, so they need no wiki, no caller and none of
the per-process switch that page views take: werkzeug's SharedDataMiddleware answers them
(ETag, Last-Modified, 304 on a match) with the security headers Otterwiki puts on every
response. Anything it does not find (or a method other than GET and HEAD) goes to Otterwiki,
which answers as it always did.
"""

from __future__ import annotations

from werkzeug.middleware.shared_data import SharedDataMiddleware

STATIC_PREFIX = "/static"
# Otterwiki's set_security_headers (server.py) adds these to every response it sends.
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Referrer-Policy", "same-origin"),
]
_FALLBACK = "robot.static.fallback"


def static_files(folder: str, fallback, security_headers: bool = True):
    """Return a WSGI app serving `folder` under /static/, else calling `fallback`.

    `folder` is Otterwiki's `app.static_folder`; `fallback` a WSGI app (the gateway's own way
    to Otterwiki). Files are revalidated on every use (max-age=0), as Flask's static route
    asks with `no-cache`, so a new Otterwiki's files show at once.
    """
    extra = SECURITY_HEADERS if security_headers else []

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

        return shared(environ, start)

    return app
