"""gunicorn's own error responses (a request it could not parse) carry the platform's headers.

gunicorn answers a request it cannot parse (a request line or header past its limits, a
malformed line) itself, before any app runs, with a small HTML page and no security headers
(gunicorn 27's `util.write_error`). That page becomes `app.core.server_errors.error_response`:
plain text under ERROR_POLICY, as uvicorn's own answers of the MCP service do. gunicorn's page
is replaced, not wrapped: it builds the whole response, status line to body, in one string.
"""

from __future__ import annotations

from app.core.server_errors import error_response


def install() -> None:
    """Make gunicorn send `error_response` for what it refuses itself (call before workers
    fork, from the gunicorn config). Installing twice does nothing."""
    from gunicorn import util

    def write_error(sock, status_int, reason, mesg):
        util.write_nonblock(sock, error_response(status_int, reason, mesg))

    if not getattr(util.write_error, "robot_error_response", False):
        write_error.robot_error_response = True
        util.write_error = write_error
