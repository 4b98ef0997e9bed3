"""The authorization server's endpoints as seen on a wiki's MCP origin.

Claude.ai calls /authorize, /token and /register (others /revoke too) on the MCP origin whatever
the metadata says, and not every client follows a 308 on a POST. So the browser-facing GET
/authorize is redirected to the auth service (naming this wiki as the RFC 8707 `resource` when
the client did not), and everything else is forwarded to the auth service over loopback with its
body, answered here.
"""

from __future__ import annotations

from urllib.parse import parse_qsl
from urllib.parse import urlencode

import httpx2

from app.core.platform import Platform

AUTHORIZE_PATH = "/authorize"
FORWARDED_PATHS = ("/token", "/register", "/revoke", "/.well-known/oauth-authorization-server")
# /token, /register and /revoke bodies are a few fields (the auth service caps them at 64 KiB too).
MAX_BODY_BYTES = 64 * 1024
# Headers of the auth service's answer that mean something to the client (Access-Control-Allow-
# Origin is left to this service's own CORS layer, which sets it on every answer).
_ANSWER_HEADERS = (
    "content-type",
    "cache-control",
    "pragma",
    "www-authenticate",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
)
_TIMEOUT = httpx2.Timeout(15.0, connect=5.0)


def authorize_location(platform: Platform, slug: str, query: str) -> str:
    """Where a GET /authorize on wiki `slug`'s MCP origin goes: the auth service, with
    `resource` set to this wiki's MCP URL unless the client named one."""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name == "resource" for name, _ in pairs):
        pairs.append(("resource", platform.settings.mcp_url(slug)))
    return platform.settings.auth_origin + "/auth" + AUTHORIZE_PATH + "?" + urlencode(pairs)


async def _read_body(receive, limit: int) -> bytes | None:
    """The request body, or None when it is longer than `limit` bytes or the client left."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def answer(platform: Platform, slug: str, scope, receive, send) -> None:
    """Answer an authorization-server request that reached wiki `slug`'s MCP origin."""
    path, query = scope["path"].rstrip("/"), scope.get("query_string", b"").decode("latin-1")
    if path == AUTHORIZE_PATH:
        location = authorize_location(platform, slug, query)
        await _respond(send, 308, b"", [(b"location", location.encode())])
        return
    body = await _read_body(receive, MAX_BODY_BYTES)
    if body is None:
        error = b'{"error": "invalid_request", "error_description": "body too large"}'
        await _respond(send, 413, error, [(b"content-type", b"application/json")])
        return
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name in (b"content-type", b"accept", b"authorization")
    }
    url = platform.settings.internal_auth_origin() + path + (f"?{query}" if query else "")
    try:
        async with httpx2.AsyncClient(timeout=_TIMEOUT) as client:
            answered = await client.request(scope["method"], url, content=body, headers=headers)
    except httpx2.HTTPError:
        error = b'{"error": "temporarily_unavailable", "error_description": "try again"}'
        await _respond(send, 503, error, [(b"content-type", b"application/json")])
        return
    kept = [
        (name.encode(), value.encode())
        for name, value in answered.headers.items()
        if name.lower() in _ANSWER_HEADERS
    ]
    await _respond(send, answered.status_code, answered.content, kept)


async def _respond(send, status: int, body: bytes, headers: list) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
