"""Otterwiki's own static files (CSS, scripts, fonts), served without waking Otterwiki's app.

They are the same package files for every wiki, so they need no wiki, no caller and none of
the per-process switch that page views take: werkzeug's SharedDataMiddleware answers them
(ETag, Last-Modified, 304 on a match) with the security headers Otterwiki puts on every
response. The few files the platform adds or changes (MathJax's component with its safe
configuration, the platform's handlers.js) are answered by the same middleware from memory,
with an ETag of their content, so conditional requests get the same answers for both (the
twenty-second review found If-Match and Range answered differently). Anything it does not find
(or a method other than GET and HEAD) goes to Otterwiki, which answers as it always did. None
takes a wiki's turn (app.wiki.turns): a browser fetches them beside every page, while the
page's own request may still hold its pool's turn.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime

from werkzeug.http import parse_date
from werkzeug.http import parse_etags
from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.security import safe_join

from app.core.errors import NotFound

STATIC_PREFIX = "/static"
# Otterwiki's routes that send one package file, the same for every wiki: endpoint -> the
# file's path. A browser asks for the favicon beside every page (views.favicon, 2.26.1).
FILE_ROUTES = {"favicon": f"{STATIC_PREFIX}/img/otter-favicon.ico"}
# Otterwiki's set_security_headers (server.py) adds these to every response it sends.
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Referrer-Policy", "same-origin"),
]
_FALLBACK = "robot.static.fallback"
_SLASHES = re.compile(r"//+")


def static_files(
    folder: str,
    fallback,
    security_headers: bool = True,
    generated: Mapping[str, bytes | None] = {},
):
    """Return a WSGI app serving `folder` under /static/, else calling `fallback`.

    `folder` is Otterwiki's `app.static_folder`; `fallback` a WSGI app (the gateway's own way
    to Otterwiki); `generated` maps paths under /static/ to the bytes served there instead of
    the file, or to None for a file never served (NotFound). A path is looked up as the file
    it names (werkzeug.security.safe_join, as SharedDataMiddleware resolves it):
    `mathjax//tex-chtml.js` served the package's file instead of the changed one (twenty-first
    review), and is read as Werkzeug routes it, leading slashes merged. Files are revalidated
    on every use (max-age=0), as Flask's static route asks with `no-cache`, so a new
    Otterwiki's files show at once.

    Raises NotFound for a withheld file.
    """
    extra = SECURITY_HEADERS if security_headers else []

    def otherwise(environ, start_response):
        environ[_FALLBACK] = True
        return fallback(environ, start_response)

    shared = _StaticFolder(otherwise, folder, generated)

    def app(environ, start_response):
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return fallback(environ, start_response)

        def start(status, headers, exc_info=None):
            if not environ.get(_FALLBACK):
                headers = headers + extra
            return start_response(status, headers, exc_info)

        # As Werkzeug routes it, slashes merged: `//static/...` is the static route too, and
        # SharedDataMiddleware passed it to Otterwiki's view, which served withheld files
        # (twenty-second review); `/static//mathjax/...` was 404 (twenty-third).
        environ["PATH_INFO"] = _SLASHES.sub("/", "/" + environ.get("PATH_INFO", ""))
        if shared.precondition_fails(environ):
            start("412 Precondition Failed", [("Content-Length", "0")])
            return []
        # Evaluated: SharedDataMiddleware would read a true If-Match as If-None-Match (304).
        environ.pop("HTTP_IF_MATCH", None)
        environ.pop("HTTP_IF_UNMODIFIED_SINCE", None)
        answer = shared(environ, start)
        if environ["REQUEST_METHOD"] == "HEAD" and not environ.get(_FALLBACK):
            # SharedDataMiddleware sends the body for HEAD too (gunicorn drops it; not all do).
            if hasattr(answer, "close"):
                answer.close()
            return []
        return answer

    return app


class _StaticFolder(SharedDataMiddleware):
    """SharedDataMiddleware over Otterwiki's static `folder` at /static/, with the `generated`
    files (see static_files) in place of the package's, tagged by their content."""

    def __init__(self, app, folder: str, generated: Mapping[str, bytes | None]):
        super().__init__(app, {STATIC_PREFIX: folder}, cache_timeout=0)
        # The folder's own loader, looked to after the generated files (the constructor takes
        # folders, files and packages only).
        ((prefix, self._package),) = self.exports
        self.exports = [(prefix, self._load)]
        self._folder = folder
        self._files = {os.path.join(folder, name): body for name, body in generated.items()}
        self._etags = {
            file: hashlib.sha256(body).hexdigest()[:32]
            for file, body in self._files.items()
            if body is not None
        }
        # Their Last-Modified: this process's start. A worker started later only makes a
        # client's If-Modified-Since miss, never match stale bytes (a new deploy restarts all).
        self._built = datetime.now(UTC)

    def _load(self, name: str | None):
        file = safe_join(self._folder, name) if name is not None else None
        if file not in self._files:
            return self._package(name)
        body = self._files[file]
        if body is None:
            raise NotFound(f"there is no {STATIC_PREFIX}/{name} on this platform")
        return file, lambda: (io.BytesIO(body), self._built, len(body))

    def precondition_fails(self, environ) -> bool:
        """Whether the request's If-Match, or else If-Unmodified-Since, is false for the file
        it asks for (RFC 9110 13.1.1, 13.1.4: 412); SharedDataMiddleware reads neither, and
        answered a wrong If-Match 304 (twenty-third review). False when it asks for no file."""
        if_match = environ.get("HTTP_IF_MATCH")
        since = environ.get("HTTP_IF_UNMODIFIED_SINCE")
        path = environ["PATH_INFO"]
        if not (if_match or since) or not path.startswith(STATIC_PREFIX + "/"):
            return False
        real_filename, opener = self._load(path[len(STATIC_PREFIX) + 1 :])
        if opener is None:
            return False
        file, mtime, size = opener()
        file.close()
        if if_match:
            tags = parse_etags(if_match)
            return not (
                tags.star_tag or tags.contains(self.generate_etag(mtime, size, real_filename))
            )
        date = parse_date(since)
        return date is not None and mtime.replace(microsecond=0) > date

    def generate_etag(self, mtime: datetime, file_size: int, real_filename: str) -> str:
        """A generated file's content hash, else werkzeug's tag (mtime, size, name)."""
        return self._etags.get(real_filename) or super().generate_etag(
            mtime, file_size, real_filename
        )
