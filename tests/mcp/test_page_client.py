"""The MCP service's page client against a scripted wiki service on a loopback socket.

The end-to-end tests drive the real wiki service; these cover what it rarely does: chunked or
close-delimited answers, answers past the size limit, a service that never answers or is down.
"""

import asyncio
import dataclasses
import json

import pytest
import pytest_asyncio

from app.core.errors import NotFound
from app.core.errors import PayloadTooLarge
from app.core.errors import Unauthorized
from app.core.errors import UpstreamError
from app.mcp import page_client
from app.mcp.page_client import PageClient
from tests.conftest import free_ports

pytestmark = pytest.mark.asyncio
AUTH = "Bearer robot_secret"


def json_answer(data: dict, status: str = "200 OK") -> bytes:
    body = json.dumps(data).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


class Upstream:
    """A one-answer-per-connection server that records each request it reads."""

    def __init__(self, answer: bytes | None):
        self.answer = answer
        self.requests: list[bytes] = []

    async def handle(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.requests.append(head + await reader.readexactly(length))
            if self.answer is None:  # never answers
                await asyncio.sleep(3600)
            writer.write(self.answer)
            await writer.drain()
        finally:
            writer.close()


@pytest_asyncio.fixture
async def serve(settings):
    servers = []

    async def start(answer: bytes | None) -> tuple[PageClient, Upstream]:
        upstream = Upstream(answer)
        server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        wiki = dataclasses.replace(settings, wiki_port=port, bind_host="127.0.0.1")
        return PageClient(wiki), upstream

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_request_names_the_wiki_and_forwards_the_callers_credentials(serve):
    pages, upstream = await serve(json_answer({"path": "Home", "content": "hi"}))
    page = await pages.read_page("alpha", AUTH, "Home/Sub Page", revision="abc")
    assert page == {"path": "Home", "content": "hi"}
    request = upstream.requests[0].decode()
    assert request.startswith("GET /api/v1/pages/Home/Sub%20Page?revision=abc HTTP/1.1\r\n")
    assert "\r\nHost: alpha.localhost\r\n" in request
    assert f"\r\nAuthorization: {AUTH}\r\n" in request


async def test_json_bodies_go_as_utf8_with_their_length(serve):
    pages, upstream = await serve(json_answer({"path": "P", "revision": "r", "created": True}))
    await pages.write_page("alpha", AUTH, "P", "Grüße 你好", base_revision="r0")
    head, _, body = upstream.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"PUT /api/v1/pages/P HTTP/1.1")
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {"content": "Grüße 你好", "base_revision": "r0"}
    assert "你好".encode() in body


async def test_chunked_and_close_delimited_answers_are_read_whole(serve):
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'9\r\n{"pages":\r\n3\r\n []\r\n1\r\n}\r\n0\r\n\r\n'
    )
    pages, _ = await serve(chunked)
    assert await pages.list_pages("alpha", AUTH) == {"pages": []}
    pages, _ = await serve(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"pages": [1]}')
    assert await pages.list_pages("alpha", AUTH) == {"pages": [1]}


async def test_error_answers_become_domain_errors_with_their_message(serve):
    answer = json_answer({"ok": False, "error": "page 'X' does not exist"}, "404 NOT FOUND")
    pages, _ = await serve(answer)
    with pytest.raises(NotFound, match="page 'X' does not exist"):
        await pages.read_page("alpha", AUTH, "X")


async def test_an_answer_past_the_limit_is_refused(serve):
    pages, _ = await serve(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100)
    with pytest.raises(PayloadTooLarge):
        await pages.attachment("alpha", AUTH, "P", "a.bin", limit=10)
    undeclared = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 100
    pages, _ = await serve(undeclared)
    with pytest.raises(PayloadTooLarge):
        await pages.attachment("alpha", AUTH, "P", "a.bin", limit=10)


async def test_a_wiki_that_never_answers_times_out(serve, monkeypatch):
    monkeypatch.setattr(page_client, "TIMEOUT", 0.2)
    pages, _ = await serve(None)
    with pytest.raises(UpstreamError, match="did not answer in time"):
        await pages.read_page("alpha", AUTH, "Home")


async def test_a_wiki_service_that_is_down_is_unreachable(settings):
    down = dataclasses.replace(settings, wiki_port=free_ports(1)[0], bind_host="127.0.0.1")
    with pytest.raises(UpstreamError, match="unreachable"):
        await PageClient(down).read_page("alpha", AUTH, "Home")


async def test_a_truncated_answer_is_an_upstream_error(serve):
    pages, _ = await serve(b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"pa')
    with pytest.raises(UpstreamError, match="unreachable"):
        await pages.read_page("alpha", AUTH, "Home")


async def test_a_malformed_authorization_is_not_forwarded(serve):
    pages, upstream = await serve(json_answer({}))
    with pytest.raises(Unauthorized, match="malformed"):
        await pages.read_page("alpha", "Bearer x\r\nX-Evil: 1", "Home")
    assert upstream.requests == []
