"""The MCP service (uvicorn --factory app.mcp_entry:create_app): wiki tools over streamable HTTP."""

from __future__ import annotations

import anyio.to_thread
import fastmcp
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from app.core.platform import Platform
from app.core.settings import Settings
from app.mcp.auth import MCP_PATH
from app.mcp.auth import McpAuth
from app.mcp.cors import Cors
from app.mcp.headers import SecurityHeaders
from app.mcp.page_client import PageClient
from app.mcp.server_errors import HttpProtocol
from app.mcp.signin import SignInForWrites
from app.mcp.tools import build_server
from app.mcp.transport import Transport

# uvicorn loads both from here (supervisor/programs.conf): the app's factory, and with
# `--http app.mcp_entry:HttpProtocol` the protocol whose own answers carry our headers. Named
# here, so the deploy's import walk from this module restarts mcp when it changes.
__all__ = ["HttpProtocol", "create_app"]


def create_app(settings: Settings | None = None):
    """Build the ASGI app: CORS, security headers, auth and request forms before FastMCP."""
    platform = Platform.load(settings)
    # No OpenTelemetry SDK runs in this process, so FastMCP's per-request span bookkeeping
    # (about a tenth of its own time per call) would record nothing.
    fastmcp.settings.telemetry_mode = "off"
    pages = PageClient(platform.settings)
    server = build_server(pages)  # its lifespan closes `pages` when the app shuts down

    @server.custom_route("/healthz", methods=["GET", "HEAD"])
    async def healthz(request: Request) -> PlainTextResponse:
        problem = await anyio.to_thread.run_sync(platform.store.health_problem)
        if problem:
            return PlainTextResponse(f"platform database: {problem}\n", status_code=503)
        return PlainTextResponse("ok\n")

    # Stateless and JSON answers: no session or stream outlives its request, so a restart never
    # strands a client and shutdown never waits on an idle stream. The Host is checked by McpAuth
    # against the wikis that exist, which is the DNS-rebinding protection FastMCP's guard offers.
    app = server.http_app(
        path=MCP_PATH, stateless_http=True, json_response=True, host_origin_protection=False
    )
    app.router.redirect_slashes = False  # `/mcp/` is served, not redirected (Transport)
    gated = SignInForWrites(app, server, platform)  # anonymous write calls: 401, sign in
    return Cors(SecurityHeaders(McpAuth(Transport(gated), platform)))
