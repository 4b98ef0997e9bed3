"""What gunicorn refuses before any app runs still carries the platform's security headers."""

from __future__ import annotations

import socket

import pytest

from app.core.csp import ERROR_POLICY

pytestmark = pytest.mark.stack

# Requests gunicorn itself refuses, some quoting the client's text back in the message.
REFUSED = {
    "request line past its limit": b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "a method of markup": b"<script>alert(1)</script> / HTTP/1.1\r\nHost: x\r\n\r\n",
    "a header without a colon": (
        b"GET / HTTP/1.1\r\nHost: x\r\n<img src=x onerror=alert(1)>\r\n\r\n"
    ),
    "a header past its limit": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"b" * 9000 + b"\r\n\r\n",
}


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send `request` as is to 127.0.0.1:`port`; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def assert_error_answer(answer: bytes, statuses: tuple[str, ...]) -> tuple[dict, bytes]:
    """Check that `answer` is one of `statuses`, plain text under ERROR_POLICY with the
    platform's headers, and nothing after it; return its headers and body."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers = {name.title(): value for name, value in headers.items()}
    assert [line.lower().split(":")[0] for line in lines].count("content-security-policy") == 1
    assert lines[0].split()[1] in statuses, lines[0]
    assert headers["Content-Security-Policy"] == ERROR_POLICY
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert int(headers["Content-Length"]) == len(body) and b"<html" not in body
    return headers, body


@pytest.mark.parametrize("service", ["otterwiki", "api", "auth"])
@pytest.mark.parametrize("request_bytes", REFUSED.values(), ids=REFUSED.keys())
def test_what_gunicorn_refuses_itself_is_plain_text_under_the_csp(stack, service, request_bytes):
    """Thirteenth session's note: gunicorn's own 400 pages were HTML without a CSP."""
    answer = raw_exchange(stack.port(service), request_bytes)
    assert_error_answer(answer, ("400", "414", "431"))


@pytest.mark.parametrize("service", ["otterwiki", "api", "auth"])
@pytest.mark.parametrize("path", ["/api/v1/pages/x", "/api/wikis", "/oauth/register", "/"])
def test_a_body_that_cannot_be_read_is_refused_under_the_csp(stack, service, path):
    """Sixteenth review: a chunked body with a bad chunk size got the api and auth services'
    400 as JSON without a CSP or nosniff (it is answered before their apps run)."""
    request = (
        f"POST {path} HTTP/1.1\r\nHost: x.localhost\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ).encode()
    answer = raw_exchange(stack.port(service), request)
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = {n.title(): v for n, v in (line.split(": ", 1) for line in head[1:])}
    assert head[0].split()[1].startswith("4"), head[0]
    assert "Content-Security-Policy" in headers, headers
    assert headers["X-Content-Type-Options"] == "nosniff"
