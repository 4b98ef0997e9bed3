"""The MCP service's page client against a scripted wiki service on a loopback socket.

The end-to-end tests drive the real wiki service; these cover what it rarely does: chunked or
close-delimited answers, answers past the size limit, a service that never answers, trickles,
breaks off or is down, keeps connections alive or sets cookies.
"""

import asyncio
import dataclasses
import json

import pytest
import pytest_asyncio

from app import mcp_entry
from app.core.errors import BadRequest
from app.core.errors import NotFound
from app.core.errors import PayloadTooLarge
from app.core.errors import TooManyRequests
from app.core.errors import Unauthorized
from app.core.errors import Unavailable
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
    """A server that records each request it reads and gives each the same answer.

    `answer` is the bytes to send, None to never answer, or a coroutine function that writes
    its own answer to the writer it is given. With `keep_alive` it reads the next request on the
    same connection; without, it closes the connection after one answer.
    """

    def __init__(self, answer, keep_alive: bool = False):
        self.answer = answer
        self.keep_alive = keep_alive
        self.requests: list[bytes] = []
        self.connections = 0

    async def handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:  # the client closed a kept-alive connection
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(head + await reader.readexactly(length))
                if self.answer is None:  # never answers
                    await asyncio.sleep(3600)
                if callable(self.answer):
                    await self.answer(writer)
                else:
                    writer.write(self.answer)
                    await writer.drain()
                if not self.keep_alive:
                    return
        finally:
            writer.close()


@pytest_asyncio.fixture
async def serve(settings):
    servers, clients = [], []

    async def start(answer, keep_alive: bool = False) -> tuple[PageClient, Upstream]:
        upstream = Upstream(answer, keep_alive)
        server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        wiki = dataclasses.replace(settings, wiki_port=port, bind_host="127.0.0.1")
        clients.append(PageClient(wiki))
        return clients[-1], upstream

    yield start
    for client in clients:
        await client.aclose()
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_request_names_the_wiki_and_forwards_the_callers_credentials(serve):
    pages, upstream = await serve(json_answer({"path": "Home", "content": "hi"}))
    page = await pages.read_page("alpha", AUTH, "Home/Sub Page", revision="abc123")
    assert page == {"path": "Home", "content": "hi"}
    request = upstream.requests[0].decode()
    assert request.startswith("GET /api/v1/pages/Home/Sub%20Page?revision=abc123 HTTP/1.1\r\n")
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


@pytest.mark.parametrize(("retry_after", "seconds"), [("7", 7), (None, 1), ("soon", 1)])
async def test_a_busy_wiki_is_too_many_requests_with_its_retry_after(
    serve, monkeypatch, retry_after, seconds
):
    monkeypatch.setattr(page_client, "TIMEOUT", 0.5)  # no time left to try again
    answer = json_answer({"ok": False, "error": "busy; try again"}, "429 TOO MANY REQUESTS")
    if retry_after:
        answer = answer.replace(b"\r\n\r\n", f"\r\nRetry-After: {retry_after}\r\n\r\n".encode(), 1)
    pages, _ = await serve(answer)
    with pytest.raises(TooManyRequests, match=rf"busy; try again \(retry after {seconds} s\)") as e:
        await pages.read_page("alpha", AUTH, "X")
    assert e.value.status == 429 and e.value.retry_after == seconds


def with_retry_after(answer: bytes, seconds: str) -> bytes:
    return answer.replace(b"\r\n\r\n", f"\r\nRetry-After: {seconds}\r\n\r\n".encode(), 1)


@pytest.mark.parametrize("status", ["429 TOO MANY REQUESTS", "503 SERVICE UNAVAILABLE"])
async def test_a_call_refused_for_now_is_sent_again_after_its_retry_after(serve, status):
    """A crowded wiki (429) or its busy write lock (503) wrote nothing: the call is sent again,
    so ten agents writing to one page at once all land, and no wiki worker waits meanwhile."""
    refusal = with_retry_after(json_answer({"ok": False, "error": "busy"}, status), "1")
    answers = [refusal, json_answer({"path": "P", "content": "written"})]

    async def next_answer(writer):
        writer.write(answers.pop(0))
        await writer.drain()

    pages, upstream = await serve(next_answer)
    started = asyncio.get_running_loop().time()
    assert await pages.write_page("alpha", AUTH, "P", "written") == {
        "path": "P",
        "content": "written",
    }
    assert len(upstream.requests) == 2
    assert upstream.requests[0] == upstream.requests[1]  # the same write, sent again
    assert asyncio.get_running_loop().time() - started >= 1  # it waited the Retry-After


async def test_refusals_are_sent_again_only_within_the_calls_time(serve, monkeypatch):
    monkeypatch.setattr(page_client, "TIMEOUT", 2.5)
    busy = json_answer({"ok": False, "error": "busy"}, "429 TOO MANY REQUESTS")
    pages, upstream = await serve(with_retry_after(busy, "1"))
    with pytest.raises(TooManyRequests, match="busy"):
        await pages.read_page("alpha", AUTH, "P")
    assert 2 <= len(upstream.requests) <= 3  # pauses of 1-2 s, each begun within 2.5 s


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [("503 SERVICE UNAVAILABLE", None), ("503 SERVICE UNAVAILABLE", "60"), ("429 X", "6")],
)
async def test_a_refusal_without_a_short_retry_after_is_not_sent_again(serve, status, retry_after):
    answer = json_answer({"ok": False, "error": "down"}, status)
    pages, upstream = await serve(with_retry_after(answer, retry_after) if retry_after else answer)
    with pytest.raises((TooManyRequests, UpstreamError, Unavailable)):
        await pages.read_page("alpha", AUTH, "P")
    assert len(upstream.requests) == 1


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
    pages = PageClient(down)
    with pytest.raises(UpstreamError, match="unreachable"):
        await pages.read_page("alpha", AUTH, "Home")
    await pages.aclose()


async def test_a_truncated_answer_is_an_upstream_error(serve):
    pages, _ = await serve(b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"pa')
    with pytest.raises(UpstreamError, match="unreachable"):
        await pages.read_page("alpha", AUTH, "Home")


async def test_a_malformed_authorization_is_not_forwarded(serve):
    pages, upstream = await serve(json_answer({}))
    with pytest.raises(Unauthorized, match="malformed"):
        await pages.read_page("alpha", "Bearer x\r\nX-Evil: 1", "Home")
    assert upstream.requests == []


async def test_calls_share_one_kept_alive_connection(serve):
    pages, upstream = await serve(json_answer({"pages": []}), keep_alive=True)
    for _ in range(3):
        assert await pages.list_pages("alpha", AUTH) == {"pages": []}
    assert len(upstream.requests) == 3
    assert upstream.connections == 1


async def test_a_cookie_from_one_answer_never_rides_along_with_the_next_request(serve):
    body = b'{"pages": []}'
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: session=alice; Path=/"
        b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    pages, upstream = await serve(answer, keep_alive=True)
    await pages.list_pages("alpha", AUTH)
    await pages.list_pages("beta", "Bearer someone_else")
    assert b"cookie:" not in upstream.requests[1].lower()


async def test_the_unix_socket_is_used_while_the_wiki_listens_there(settings, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    on_tcp, on_unix = Upstream(json_answer({"via": "tcp"})), Upstream(json_answer({"via": "unix"}))
    tcp = await asyncio.start_server(on_tcp.handle, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    wiki = dataclasses.replace(settings, run_dir=run_dir, wiki_port=port, bind_host="127.0.0.1")
    unix = await asyncio.start_unix_server(on_unix.handle, str(wiki.internal_wiki_socket))
    pages = PageClient(wiki)
    try:
        assert await pages.whoami("alpha", AUTH) == {"via": "unix"}
        unix.close()
        await unix.wait_closed()
        wiki.internal_wiki_socket.unlink()  # the wiki service stopped listening there
        assert await pages.whoami("alpha", AUTH) == {"via": "tcp"}
    finally:
        await pages.aclose()
        tcp.close()
        await tcp.wait_closed()
    assert (len(on_unix.requests), len(on_tcp.requests)) == (1, 1)


async def test_an_endless_answer_is_cut_off_at_the_cap(serve, monkeypatch):
    monkeypatch.setattr(page_client, "MAX_JSON_BYTES", 1024 * 1024)
    stopped = asyncio.Event()

    async def endless(writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[")
        try:
            while True:  # until the client stops reading and hangs up
                writer.write(b'"' + b"x" * 65536 + b'",')
                await writer.drain()
        except ConnectionError:
            stopped.set()

    pages, _ = await serve(endless)
    with pytest.raises(PayloadTooLarge, match="larger than the 1048576 bytes allowed"):
        await pages.list_pages("alpha", AUTH)
    await asyncio.wait_for(stopped.wait(), 5)


async def test_an_answer_broken_off_mid_chunk_is_an_upstream_error(serve):
    broken = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'40\r\n{"pages": ['
    )
    pages, _ = await serve(broken)
    with pytest.raises(UpstreamError, match="unreachable"):
        await pages.list_pages("alpha", AUTH)


async def test_a_trickling_answer_is_cut_off_at_the_total_deadline(serve, monkeypatch):
    monkeypatch.setattr(page_client, "TIMEOUT", 0.5)

    async def trickle(writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):  # each byte well within the 0.5 s a single read may wait
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.05)

    pages, _ = await serve(trickle)
    with pytest.raises(UpstreamError, match="did not answer in time"):
        await pages.list_pages("alpha", AUTH)


async def lifespan_messages(app) -> list[str]:
    """Start an ASGI app up and shut it down again; return the lifespan messages it sent."""
    inbox = asyncio.Queue()
    inbox.put_nowait({"type": "lifespan.startup"})
    inbox.put_nowait({"type": "lifespan.shutdown"})
    sent = []

    async def send(message):
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    return sent


async def test_the_mcp_app_closes_its_page_client_on_shutdown(platform, monkeypatch):
    made = []

    class Recorded(PageClient):
        def __init__(self, settings):
            super().__init__(settings)
            made.append(self)

    monkeypatch.setattr(mcp_entry, "PageClient", Recorded)
    app = mcp_entry.create_app(platform.settings)
    assert await lifespan_messages(app) == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    with pytest.raises(RuntimeError, match="client has been closed"):
        await made[0].whoami("alpha", AUTH)


async def test_an_upload_goes_as_raw_bytes_with_its_message(serve):
    answer = {"path": "P", "name": "a b.bin", "size": 3, "revision": "r", "created": True}
    pages, upstream = await serve(json_answer(answer))
    await pages.upload_attachment("alpha", AUTH, "P", "a b.bin", b"\x00\xff\n", "add it")
    head, _, body = upstream.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"PUT /api/v1/pages/P/attachments/a%20b.bin?message=add%20it HTTP")
    assert b"\r\nContent-Type: application/octet-stream\r\n" in head and body == b"\x00\xff\n"


@pytest.mark.parametrize(
    ("name", "size", "error"),
    [("big.bin", 11, PayloadTooLarge), ("../x", 1, BadRequest), (".hidden", 1, BadRequest)],
)
async def test_an_upload_past_the_limits_is_never_sent(serve, name, size, error):
    pages, upstream = await serve(json_answer({}))
    pages.settings = dataclasses.replace(pages.settings, max_attachment_bytes=10)
    with pytest.raises(error):
        await pages.upload_attachment("alpha", AUTH, "P", name, b"x" * size)
    assert upstream.requests == []
