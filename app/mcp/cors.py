"""CORS on the MCP origin, so MCP clients running in a browser page can call a wiki's endpoint.

Starlette's CORSMiddleware, outermost, with the MCP transport's headers. `*` is safe: the
credential is an `Authorization` header a page's script must hold, never a cookie a browser
would attach by itself, so no `Access-Control-Allow-Credentials` is ever sent.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from app.mcp.auth import MCP_PATH
from app.mcp.auth import PRM_PATHS

# What an MCP client sends: its credential, the streamable HTTP transport's headers (2025-03-26
# on: session, resumption; 2025-06-18 on: protocol version; 2026-07-28: method and name).
ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "Mcp-Protocol-Version",
    "Mcp-Session-Id",
    "Last-Event-ID",
    "Mcp-Method",
    "Mcp-Name",
)
ALLOW_METHODS = ("GET", "POST", "DELETE", "OPTIONS")
# What a client must read: the session id (when a server issues one) and the 401's challenge,
# which names the protected-resource metadata that starts the OAuth flow.
EXPOSE_HEADERS = ("Mcp-Session-Id", "WWW-Authenticate")
# Browsers cap it (Chromium at 2 hours, Firefox at 24): one preflight a day per endpoint at most.
MAX_AGE = 86400
# Preflights are answered on what this service serves; trailing slashes are ignored as our auth
# layer ignores them.
CORS_PATHS = (MCP_PATH, *PRM_PATHS)


class Cors(CORSMiddleware):
    """ASGI middleware: answer CORS preflights on `/mcp` and the PRM paths; mark every response.

    A preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) gets 204 without
    auth and without a database lookup on any Host: it grants nothing by itself, and the request
    that follows is still checked (an unknown Host then gets its 404, readable by the page).
    Every response to a request with `Origin`, our 401s and 404s included, carries
    `Access-Control-Allow-Origin: *` and `Access-Control-Expose-Headers`. A preflight asking for
    a header or method not listed gets Starlette's 400 naming what was refused.
    """

    def __init__(self, app):
        super().__init__(
            app,
            allow_origins=["*"],
            allow_methods=ALLOW_METHODS,
            allow_headers=ALLOW_HEADERS,
            expose_headers=EXPOSE_HEADERS,
            max_age=MAX_AGE,
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].rstrip("/") not in CORS_PATHS:
            await self.simple_response(scope, receive, send, Headers(scope=scope))
            return
        await super().__call__(scope, receive, send)

    def preflight_response(self, request_headers) -> Response:
        """Return Starlette's preflight answer, as 204 without a body when it allows the request."""
        response = super().preflight_response(request_headers)
        if response.status_code != 200:
            return response
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        return Response(status_code=204, headers=headers)
