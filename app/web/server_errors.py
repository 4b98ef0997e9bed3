"""gunicorn's own error responses (a request it could not parse) carry the platform's headers.

gunicorn answers a request it cannot parse (a request line or header past its limits, a
malformed line) itself, before any app runs, with a small HTML page and no security headers
(gunicorn 27's `util.write_error`). Every HTML response of the services must carry a
Content-Security-Policy (architecture §11), so that page becomes plain text with the headers
`app.core.csp.security_headers` gives every response, under a policy that loads nothing.
gunicorn's page is replaced, not wrapped: it builds the whole response, status line to body,
in one string.
"""

from __future__ import annotations

from app.core.csp import security_headers

# Nothing loads and nothing frames it: a plain-text error needs neither.
ERROR_POLICY = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'"


def error_response(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP/1.1 response (bytes) for gunicorn's error `status` `reason` (its own
    constants) with `message` (may quote the client's request), as text/plain in UTF-8."""
    body = f"{status} {reason}\n{message}\n".encode("utf-8", "replace")
    headers = {
        "Connection": "close",
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Length": str(len(body)),
        **security_headers(ERROR_POLICY),
    }
    head = f"HTTP/1.1 {status} {reason}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + "\r\n").encode("latin-1", "replace") + body


def install() -> None:
    """Make gunicorn send `error_response` for what it refuses itself (call before workers
    fork, from the gunicorn config). Installing twice does nothing."""
    from gunicorn import util

    def write_error(sock, status_int, reason, mesg):
        util.write_nonblock(sock, error_response(status_int, reason, mesg))

    if not getattr(util.write_error, "robot_error_response", False):
        write_error.robot_error_response = True
        util.write_error = write_error
