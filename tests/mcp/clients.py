"""Two real MCP clients (fastmcp's and the official SDK's) behind one small interface, for tests."""

from __future__ import annotations

import asyncio
import subprocess
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx2
from fastmcp import Client as FastClient
from fastmcp.client.transports import StreamableHttpTransport
from mcp import Client as SdkClient
from mcp.client.streamable_http import streamable_http_client

from app.core.locks import wiki_write_lock

KINDS = ("fastmcp", "sdk")


@dataclass
class Result:
    """A tool call's outcome, the same whichever client made it."""

    text: str
    data: dict | None
    is_error: bool
    content: list


def _result(raw) -> Result:
    text = "\n".join(block.text for block in raw.content if getattr(block, "type", "") == "text")
    return Result(text, raw.structured_content, bool(raw.is_error), list(raw.content))


class Session:
    """A connected MCP client of either kind."""

    def __init__(self, kind: str, client):
        self.kind = kind
        self.client = client

    async def call(self, tool: str, **arguments) -> Result:
        if self.kind == "fastmcp":
            raw = await self.client.call_tool(tool, arguments, raise_on_error=False)
        else:
            raw = await self.client.call_tool(tool, arguments)
        return _result(raw)

    async def tools(self) -> list:
        listed = await self.client.list_tools()
        return listed if self.kind == "fastmcp" else listed.tools

    @property
    def server_info(self):
        """The server's `Implementation`, from `initialize` or the `server/discover` stamp."""
        return self.client.server_info

    @property
    def instructions(self) -> str | None:
        return self.client.instructions

    async def resources(self, cursor: str | None = None) -> tuple[list, str | None]:
        """One answer of resources/list: (resources, next cursor or None)."""
        if self.kind == "fastmcp":
            listed = await self.client.list_resources_mcp(cursor=cursor)
        else:
            listed = await self.client.list_resources(cursor=cursor)
        return listed.resources, listed.next_cursor

    async def read(self, uri: str) -> str:
        """The text of resource `uri`; an MCP error raises (each client its own exception)."""
        if self.kind == "fastmcp":
            contents = await self.client.read_resource(uri)
        else:
            contents = (await self.client.read_resource(uri)).contents
        return contents[0].text


def mcp_url(stack, path: str = "/mcp") -> str:
    return f"http://127.0.0.1:{stack.port('mcp')}{path}"


@asynccontextmanager
async def connect(kind: str, stack, host: str, credential: str | None, path: str = "/mcp"):
    """Open an MCP session of `kind` to wiki `host` (endpoint `path`) with a Bearer credential
    (None: anonymously)."""
    headers = {"Host": host}
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    if kind == "fastmcp":
        transport = StreamableHttpTransport(mcp_url(stack, path), headers=headers)
        async with FastClient(transport, timeout=60) as client:
            yield Session(kind, client)
    else:
        timeout = httpx2.Timeout(60.0, connect=10.0)
        async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
            async with SdkClient(
                streamable_http_client(mcp_url(stack, path), http_client=http)
            ) as client:
                yield Session(kind, client)


@asynccontextmanager
async def held(kind: str, stack, host: str, credential: str):
    """Like `connect`, but owned by a task of its own, so an async fixture may yield it.

    pytest-asyncio runs a fixture's setup and teardown in different tasks, and anyio cancel
    scopes (which the SDK client opens) must be exited by the task that entered them.
    """
    ready, finished, box = asyncio.Event(), asyncio.Event(), {}

    async def hold():
        try:
            async with connect(kind, stack, host, credential) as session:
                box["session"] = session
                ready.set()
                await finished.wait()
        finally:
            ready.set()

    task = asyncio.create_task(hold())
    await ready.wait()
    if "session" not in box:
        await task  # raises what went wrong
    try:
        yield box["session"]
    finally:
        finished.set()
        await task


def rpc(
    stack,
    host: str,
    credential: str | None,
    method: str = "tools/list",
    params: dict | None = None,
    version: str | None = None,
) -> httpx2.Response:
    """POST one raw JSON-RPC request to /mcp (for status and header checks), in protocol
    revision `version` when given (the `MCP-Protocol-Version` header)."""
    headers = {"Accept": "application/json, text/event-stream"}
    if credential:
        headers["Authorization"] = f"Bearer {credential}"
    if version:
        headers["MCP-Protocol-Version"] = version
    with stack.client("mcp", host=host) as client:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        return client.post("/mcp", json=body, headers=headers)


def attach(stack, slug: str, page: str, name: str, data: bytes) -> None:
    """Commit a file into a page's attachment folder, as a git push or an upload would."""
    repo = stack.settings.repo_path(slug)
    folder = repo / page.lower()
    with wiki_write_lock(stack.settings.wiki_dir(slug)):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        git = ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@test"]
        subprocess.run([*git, "add", f"{page.lower()}/{name}"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", f"attach {name}"], check=True)


def last_line(completed) -> str:
    """Return the last output line of a CLI call, failing loudly if the command failed."""
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout.strip().splitlines()[-1].strip()
