"""ASGI middleware: every MCP service response carries the platform's security headers."""

from __future__ import annotations

from app.core.csp import page_policy
from app.core.csp import security_headers

# The MCP service sends JSON and small error pages; none of them runs script.
_HEADERS = [
    (name.lower().encode("latin-1"), value.encode("latin-1"))
    for name, value in security_headers(page_policy()).items()
]


class SecurityHeaders:
    """Wrap an ASGI `app` so each HTTP response start carries `app.core.csp`'s headers.

    Headers the app set itself are kept; ours are added only where the name is missing.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(pair for pair in _HEADERS if pair[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
