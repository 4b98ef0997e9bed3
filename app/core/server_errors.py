"""The answer a server writes itself, before or around any app: plain text under the platform's
headers.

gunicorn (the wiki, api and auth services) and uvicorn (the MCP service) answer some requests
themselves: one they cannot parse, and for uvicorn one the app failed before starting an answer
or one past its concurrency limit. Their own answers carry none of the headers the apps add, and
every response of the services must carry a Content-Security-Policy (architecture §11), so both
servers send these instead (app/web/server_errors.py for gunicorn, app/mcp/server_errors.py for
uvicorn): text/plain in UTF-8, `app.core.csp.security_headers` under ERROR_POLICY, which loads
nothing, and the connection closed after it.
"""

from __future__ import annotations

from app.core.csp import ERROR_POLICY
from app.core.csp import security_headers


def error_body(status: int, reason: str, message: str = "") -> bytes:
    """The text of an error answer: `status` `reason`, then `message` (which may quote the
    client's request, so it is sent only as plain text) on its own line when given."""
    text = f"{status} {reason}\n" + (f"{message}\n" if message else "")
    return text.encode("utf-8", "replace")


def error_headers(body: bytes) -> dict[str, str]:
    """The headers of an error answer whose body is `body`: plain text of its length, the
    connection closed after it, and the platform's security headers under ERROR_POLICY."""
    return {
        "Connection": "close",
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Length": str(len(body)),
        **security_headers(ERROR_POLICY),
    }


def error_response(status: int, reason: str, message: str = "") -> bytes:
    """The whole HTTP/1.1 error answer, status line to body, as bytes for a socket.

    Args:
        status: the status code, e.g. 400.
        reason: its reason phrase, e.g. "Bad Request" (RFC 9112 section 4: latin-1 text).
        message: a line of detail; may quote the client's request.

    Returns:
        The response's bytes: the status line and headers in latin-1 (RFC 9110 section 5.5;
        what latin-1 cannot hold becomes `?`), then the body of `error_body` in UTF-8.
    """
    body = error_body(status, reason, message)
    head = f"HTTP/1.1 {status} {reason}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in error_headers(body).items())
    return (head + "\r\n").encode("latin-1", "replace") + body
