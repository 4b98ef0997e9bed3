"""WikiServer's one-provider tool lookup finds what FastMCP finds and still applies tool auth."""

import pytest
from fastmcp import FastMCP

from app.mcp.tools import WikiServer
from app.mcp.tools import build_server

pytestmark = pytest.mark.asyncio


async def test_lookup_finds_every_tool_fastmcp_lists():
    server = build_server(pages=None)
    for tool in await server.list_tools():
        assert (await server.get_tool(tool.name)).name == tool.name
    assert await server.get_tool("no_such_tool") is None


@pytest.mark.parametrize("kind", [WikiServer, FastMCP])
async def test_a_tool_with_its_own_auth_check_is_still_refused(kind):
    server = kind("t")

    @server.tool(auth=lambda context: False)
    def guarded() -> str:
        return "secret"

    @server.tool
    def open_tool() -> str:
        return "hello"

    assert await server.get_tool("guarded") is None
    assert (await server.get_tool("open_tool")).name == "open_tool"
