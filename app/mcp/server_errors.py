"""uvicorn's own answers in the MCP service carry the platform's headers, as gunicorn's do.

uvicorn answers some requests itself, outside the app and so outside SecurityHeaders, each as
bare text/plain without a Content-Security-Policy (uvicorn 0.54, httptools_impl.py; h11_impl.py
has the same three):
- a request its parser refuses ("Invalid HTTP request received.", 400: a malformed request
  line or header), written straight to the socket by `send_400_response`;
- "Service Unavailable" (503) past `--limit-concurrency`, the ASGI app
  `flow_control.service_unavailable` run in the app's place;
- "Internal Server Error" (500) when the app raises or returns before starting an answer
  (`RequestResponseCycle.send_500_response`).
HttpProtocol sends `app.core.server_errors`' answer for each instead. It also refuses a request
head still unfinished past HEAD_LIMIT (431): the httptools protocol reads a head of any length
(only h11's stops, at 16 KiB), where gunicorn refuses a header line past 8190 bytes. It
subclasses the httptools protocol, the one uvicorn's `--http auto` picks (requirements pin
httptools; without it this import fails, rather than h11 answering unchanged), and uvicorn
takes it by name: `--http app.mcp_entry:HttpProtocol` (supervisor/programs.conf).
WebSocket handshakes, whose refusals uvicorn's websockets protocol also writes itself, are off
(`--ws none`): MCP runs over plain HTTP, and an upgrade request then reaches the app as one.
"""

from __future__ import annotations

import logging

from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.server_errors import error_body
from app.core.server_errors import error_headers
from app.core.server_errors import error_response

_logger = logging.getLogger("uvicorn.error")
# Bytes of one request's head (request line and headers) read before it must be complete:
# ample for any client's (a bearer token is about 1 KiB), and no client makes the service
# buffer a header without end (it holds at most this plus one read, 256 KiB in asyncio).
HEAD_LIMIT = 64 * 1024


async def send_error(send, status: int, reason: str, message: str = "") -> None:
    """Send the error answer `status` `reason` (`message` as its detail) through ASGI `send`:
    `app.core.server_errors`' body and headers, the headers as ASGI's lowercase bytes."""
    body = error_body(status, reason, message)
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in error_headers(body).items()
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _service_unavailable(scope, receive, send) -> None:
    """uvicorn's answer past its concurrency limit (flow_control.service_unavailable), ours."""
    await send_error(send, 503, "Service Unavailable", "Exceeded concurrency limit.")


def _failures_answered(app):
    """`app`, answering 500 itself where uvicorn would (the app raised, or returned, before
    starting an answer), so uvicorn's own 500 is never sent. The exception still goes on to
    uvicorn, which logs it and closes the connection."""

    async def answered(scope, receive, send) -> None:
        started = False

        async def send_noting_start(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, send_noting_start)
        except BaseException:
            if not started:
                await send_error(send, 500, "Internal Server Error")
            raise
        if not started:
            _logger.error("ASGI callable returned without starting response.")
            await send_error(send, 500, "Internal Server Error")

    return answered


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose own answers (400, 500, 503) are
    `app.core.server_errors`' plain text under the platform's headers and ERROR_POLICY."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._head_bytes: int | None = 0  # read of the head being parsed; None in a body

    def data_received(self, data: bytes) -> None:
        # Counted before the parser reads it and judged after, so only a head still unfinished
        # is refused, never a body sent along with its head (on_headers_complete ends the count).
        if self._head_bytes is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        too_long = self._head_bytes is not None and self._head_bytes > HEAD_LIMIT
        if too_long and not self.transport.is_closing():
            _logger.warning("Request head past %d bytes.", HEAD_LIMIT)
            self._refuse(431, "Request Header Fields Too Large", "The request head is too long.")

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_bytes = 0  # what follows is the next request's head

    def send_400_response(self, msg: str) -> None:
        """Refuse a request the parser could not read: `msg` is uvicorn's own text."""
        self._refuse(400, "Bad Request", msg)

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self.transport.write(error_response(status, reason, message))
        self.transport.close()

    def _start_asgi_task(self, cycle, app) -> None:
        # Every request's app passes here (uvicorn 0.54), uvicorn's 503 app included.
        app = _service_unavailable if app is service_unavailable else _failures_answered(app)
        super()._start_asgi_task(cycle, app)
