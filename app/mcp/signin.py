"""Callers who could write after signing in (again) are told so when they call a write tool.

Two callers get this answer to a `tools/call` of a tool not marked read-only (`readOnlyHint`),
before the tool runs, with the JSON-RPC error for the call's id as body (so a 2025-03-26 batch
element gets its own answer):
- An anonymous reader of a public wiki (the auth layer lets requests without a credential
  through there): HTTP 401 with the same `WWW-Authenticate: Bearer resource_metadata=...,
  scope=...` challenge as any request without a credential. MCP authorization (2025-06-18 and
  2025-11-25, "Authorization Server Discovery", "Scope Selection Strategy") has clients start
  OAuth on a 401 naming the resource metadata; RFC 6750 3.1 gives a request that carried no
  credential no `error` code.
- An OAuth access token granted `wiki:read` only, of a member whose role may write: HTTP 403
  with `error="insufficient_scope"` and the scopes to ask for, the step-up of MCP authorization
  2025-11-25 ("Scope Challenge Handling"), so the client asks the user to grant `wiki:write`.
  A viewer gains nothing by asking again, so their call goes on and the page API refuses it.
The page API refuses these writes anyway: this only gives real clients the answer they act on.
"""

from __future__ import annotations

import json

import anyio.to_thread
from starlette.responses import JSONResponse

from app.core.identity import PERMISSIONS
from app.core.platform import Platform
from app.mcp.auth import challenge_header
from app.mcp.rpc import rpc_error
from app.mcp.rpc import too_large
from app.mcp.transport import read_body
from app.mcp.transport import replay
from app.mcp.transport import request_id

# JSON-RPC 2.0 5.1 leaves -32000 to -32099 to the implementation: ours for "sign in first".
UNAUTHORIZED = -32001


class SignInForWrites:
    """ASGI middleware over FastMCP's app: ask callers who could write to sign in (again)."""

    def __init__(self, app, server, platform: Platform):
        self.app = app
        self.server = server  # the FastMCP server, to look up a called tool's annotations
        self.platform = platform

    async def __call__(self, scope, receive, send):
        caller = scope.get("state", {}).get("caller") if scope["type"] == "http" else None
        asks = caller is not None and (caller.is_anonymous or caller.read_only_grant)
        if not asks or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:  # past the auth layer's cap (as app.mcp.transport answers it)
            await JSONResponse(too_large(), 413)(scope, receive, send)
            return
        name, message_id = _tool_call(body)
        slug = scope["state"]["wiki_slug"]
        refused = await self._refusal(caller, slug, name) if name is not None else None
        if refused is None:
            await self.app(scope, replay(body, receive), send)
            return
        status, code, message = refused
        error = rpc_error(message_id, UNAUTHORIZED, f"Unauthorized: {message}")
        header = challenge_header(self.platform, slug, code)[1].decode()
        await JSONResponse(error, status, {"WWW-Authenticate": header})(scope, receive, send)

    async def _refusal(self, caller, slug: str, name: str) -> tuple[int, str | None, str] | None:
        """Return (HTTP status, RFC 6750 error code, message) for `caller` calling tool `name`
        in wiki `slug` when signing in (again) would let them write, else None."""
        if not await self._writes(name):
            return None
        if caller.is_anonymous:
            message = f"sign in to call {name}; without a credential this wiki can only be read"
            return 401, None, message
        if await self._may_write(slug, caller.did):
            message = f"this access token may only read; authorize wiki:write to call {name}"
            return 403, "insufficient_scope", message
        return None

    async def _may_write(self, slug: str, did: str) -> bool:
        """Whether member `did`'s own role in wiki `slug` may write (a platform DB read)."""
        role = await anyio.to_thread.run_sync(self.platform.store.role_of, slug, did)
        return role is not None and "WRITE" in PERMISSIONS[role]

    async def _writes(self, name: str) -> bool:
        """Whether tool `name` exists and is not marked read-only (unmarked counts as writing)."""
        tool = await self.server.get_tool(name)
        if tool is None:
            return False  # FastMCP answers an unknown tool itself
        return not (tool.annotations and tool.annotations.read_only_hint)


def _tool_call(body: bytes) -> tuple[str | None, object]:
    """Return (tool name, request id) of a `tools/call` request body, else (None, None)."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return None, None
    params = message.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    return (name, request_id(message)) if isinstance(name, str) else (None, None)
