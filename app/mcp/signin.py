"""An anonymous reader of a public wiki who calls a write tool is asked to sign in.

The auth layer lets requests without a credential through on a public wiki (reads work as in a
browser). A `tools/call` of a tool not marked read-only (`readOnlyHint`) from such a caller gets
HTTP 401 with the same `WWW-Authenticate: Bearer resource_metadata=..., scope=...` challenge as
any request without a credential, before the tool runs: MCP authorization (2025-06-18 and
2025-11-25, "Authorization Server Discovery" and "Scope Selection Strategy") has clients start
OAuth on a 401 that names the resource metadata, and RFC 6750 3.1 gives a request that carried
no credential no `error` code. (A 403 `insufficient_scope` step-up is for a token that lacks a
scope; an anonymous caller has none.) The body is a JSON-RPC error for the call's id, so a
2025-03-26 batch element gets its own answer. The page API refuses anonymous writes anyway:
this only gives real clients the answer they act on.
"""

from __future__ import annotations

import json

from starlette.responses import JSONResponse

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
    """ASGI middleware over FastMCP's app: answer anonymous write-tool calls with 401."""

    def __init__(self, app, server, platform: Platform):
        self.app = app
        self.server = server  # the FastMCP server, to look up a called tool's annotations
        self.platform = platform

    async def __call__(self, scope, receive, send):
        caller = scope.get("state", {}).get("caller") if scope["type"] == "http" else None
        if caller is None or not caller.is_anonymous or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:  # past the auth layer's cap (as app.mcp.transport answers it)
            await JSONResponse(too_large(), 413)(scope, receive, send)
            return
        name, message_id = _tool_call(body)
        if name is not None and await self._writes(name):
            slug = scope["state"]["wiki_slug"]
            error = rpc_error(
                message_id,
                UNAUTHORIZED,
                f"Unauthorized: sign in to call {name}; without a credential this wiki can only "
                "be read",
            )
            header = challenge_header(self.platform, slug)
            response = JSONResponse(error, 401, {"WWW-Authenticate": header[1].decode()})
            await response(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)

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
