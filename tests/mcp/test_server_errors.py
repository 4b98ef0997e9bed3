"""What uvicorn answers itself in the MCP service carries the platform's headers, as gunicorn's
own answers do (tests/web/test_server_errors.py): plain text under ERROR_POLICY."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from app.core.csp import page_policy
from app.mcp.server_errors import HEAD_LIMIT
from tests.conftest import ROBOT_BIN
from tests.conftest import free_ports
from tests.web.test_server_errors import assert_error_answer
from tests.web.test_server_errors import raw_exchange

REPO = Path(__file__).resolve().parents[2]
# Requests uvicorn's parser refuses before the app runs, some quoting markup.
REFUSED = {
    "a method of markup": b"<script>alert(1)</script> / HTTP/1.1\r\nHost: x\r\n\r\n",
    "a bad request line": b"GET /healthz HTTP/1.1 and more\r\nHost: x\r\n\r\n",
    "a header without a colon": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n<img src=x onerror=alert(1)>\r\n\r\n"
    ),
    "a control character in a header value": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n"
    ),
    "a space in a header name": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n",
}


@pytest.mark.stack
@pytest.mark.parametrize("request_bytes", REFUSED.values(), ids=REFUSED.keys())
def test_what_uvicorn_refuses_itself_is_plain_text_under_the_csp(stack, request_bytes):
    """uvicorn's own 400 ("Invalid HTTP request received.") had no CSP or platform headers."""
    answer = raw_exchange(stack.port("mcp"), request_bytes)
    _, body = assert_error_answer(answer, ("400", "431"))
    assert b"<script>" not in body and b"<img" not in body


@pytest.mark.stack
def test_a_head_unfinished_past_its_limit_is_refused(stack):
    # One byte past the limit and no end of the head: the server reads it all, so its close
    # leaves nothing unread (which would reset the connection before the answer is read).
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: "
    request += b"b" * (HEAD_LIMIT + 1 - len(request))
    _, body = assert_error_answer(raw_exchange(stack.port("mcp"), request), ("431",))
    assert body == b"431 Request Header Fields Too Large\nThe request head is too long.\n"


@pytest.mark.stack
def test_a_long_head_under_the_limit_and_an_upgrade_reach_the_app(stack):
    # The limit leaves real heads alone; an upgrade is no WebSocket handshake (--ws none) but an
    # ordinary request, answered by the app under its own headers.
    long_header = b"X-A: " + b"b" * (HEAD_LIMIT - 1024) + b"\r\n"
    upgrade = b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    for extra in (long_header, upgrade + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"):
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra + b"\r\n"
        head = raw_exchange(stack.port("mcp"), request).partition(b"\r\n\r\n")[0]
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, value in (ln.split(": ", 1) for ln in lines[1:])}
        assert lines[0].startswith("HTTP/1.1 200 "), lines[0]
        assert headers["content-security-policy"] == page_policy()


def _uvicorn_options() -> list[str]:
    """The options supervisor gives the MCP service's uvicorn for its protocol (--http, --ws)."""
    conf = (REPO / "supervisor" / "programs.conf").read_text()
    command = next(line for line in conf.splitlines() if "app.mcp_entry:create_app" in line)
    return " ".join(re.findall(r"--(?:http|ws) \S+", command)).split()


@pytest.fixture(scope="module")
def failing_server():
    """serve(*options) -> the port of a real uvicorn serving tests/mcp/failing_app.py with the
    MCP service's protocol options (and `options`); all stopped at the end."""
    started = []

    def serve(*options: str) -> int:
        (port,) = free_ports(1)
        command = [str(ROBOT_BIN.parent / "uvicorn"), "tests.mcp.failing_app:app"]
        command += [*_uvicorn_options(), "--lifespan", "off", "--host", "127.0.0.1"]
        command += ["--port", str(port), *options]
        process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
        started.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return port
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"uvicorn did not start: {command}")

    yield serve
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def test_options_name_our_protocol():
    assert _uvicorn_options() == ["--http", "app.mcp_entry:HttpProtocol", "--ws", "none"]


@pytest.mark.parametrize("path", ["/raise", "/return"])
def test_an_app_failing_before_answering_gets_our_500(failing_server, path):
    """uvicorn's own 500 (the app raised or returned before starting an answer) had no CSP."""
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    headers, body = assert_error_answer(raw_exchange(failing_server(), request), ("500",))
    assert body == b"500 Internal Server Error\n" and headers["Connection"] == "close"


def test_a_body_sent_with_its_head_is_no_long_head(failing_server):
    # The head limit counts the head only: a body in the same packets passes to the app.
    body = b"x" * (4 * HEAD_LIMIT)
    head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n".encode()
    answer = raw_exchange(failing_server(), head + b"Connection: close\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(str(len(body)).encode())


def test_past_the_concurrency_limit_gets_our_503(failing_server):
    """uvicorn's own 503 past --limit-concurrency (its connection counts: 1 refuses all)."""
    port = failing_server("--limit-concurrency", "1")
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    _, body = assert_error_answer(raw_exchange(port, request), ("503",))
    assert body == b"503 Service Unavailable\nExceeded concurrency limit.\n"
