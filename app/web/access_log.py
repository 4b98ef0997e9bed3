"""gunicorn's access log without one-time codes: `code=` values in URLs are written as `[redacted]`.

Handoff codes (app.core.handoff) and OAuth authorization codes travel in query strings for one
hop; a log line is kept far longer and read by more people, so it never holds them, whether in
the request line or in a Referer. Used by app/gunicorn.conf.py as `logger_class`.
"""

from __future__ import annotations

import re

from gunicorn.glogging import Logger

# A `code` query parameter's value, wherever the parameter sits in the query.
_CODE_VALUE = re.compile(r"(?i)([?&]code=)[^&#\s]*")
_QUERY_CODE_VALUE = re.compile(r"(?i)(^|&)(code=)[^&#\s]*")
# The atoms of gunicorn's access-log format that carry a URL or a query string.
_URL_ATOMS = ("r", "f")


def redact_codes(url: str) -> str:
    """`url` (a request line, URL or path with its query) with every `code=` value redacted."""
    return _CODE_VALUE.sub(r"\1[redacted]", url)


class RedactingLogger(Logger):
    """gunicorn's Logger, writing `[redacted]` in place of `code=` values in access lines."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name in _URL_ATOMS:
            if isinstance(atoms.get(name), str):
                atoms[name] = redact_codes(atoms[name])
        if isinstance(atoms.get("q"), str):
            atoms["q"] = _QUERY_CODE_VALUE.sub(r"\1\2[redacted]", atoms["q"])
        return atoms
