"""An async client of one wiki's page API, acting with the caller's own credentials.

The MCP service reaches the wiki service directly (`settings.internal_wiki_origin()`), naming the
wiki by its Host header and forwarding the caller's Authorization header verbatim: there is no
master key, so the page API applies exactly the caller's role in that wiki.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from urllib.parse import quote
from urllib.parse import urlencode
from urllib.parse import urlsplit

import httptools

from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import Forbidden
from app.core.errors import NotFound
from app.core.errors import PayloadTooLarge
from app.core.errors import RobotError
from app.core.errors import Unauthorized
from app.core.errors import UpstreamError
from app.core.settings import Settings

# The page API's own limit (pagepaths.MAX_CONTENT_BYTES): refused here before it is sent.
MAX_PAGE_BYTES = 1024 * 1024
# No answer is buffered past this, so a huge or hostile answer cannot grow the MCP process. A page
# at the limit may take several times its size once JSON-escaped.
MAX_JSON_BYTES = 8 * MAX_PAGE_BYTES
# Slow wiki answers must not pin an MCP request forever; git on a big wiki may take seconds.
TIMEOUT = 30.0
CONNECT_TIMEOUT = 5.0
READ_SIZE = 256 * 1024

_ERRORS = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
}


def check_path(path: str, what: str = "page path") -> str:
    """Return a cleaned page path, or raise BadRequest saying why it cannot name a page."""
    if not isinstance(path, str) or not path.strip().strip("/"):
        raise BadRequest(f"{what} is required")
    cleaned = path.strip().strip("/")
    if "\x00" in cleaned or any(ord(ch) < 32 for ch in cleaned):
        raise BadRequest(f"{what} contains control characters")
    if any(part in ("", ".", "..") for part in cleaned.split("/")):
        raise BadRequest(f"{what} {path!r} has an empty, '.' or '..' segment")
    if len(cleaned) > 500:
        raise BadRequest(f"{what} is too long (500 characters at most)")
    return cleaned


def _page_url(path: str, *suffix: str) -> str:
    parts = [quote(check_path(path), safe="/")] + [quote(part, safe="") for part in suffix]
    return "/api/v1/pages/" + "/".join(parts)


@dataclass(frozen=True)
class Blob:
    """Bytes of an attachment with their content type."""

    data: bytes
    content_type: str


class PageClient:
    """The page API of every wiki, one short HTTP/1.1 exchange per call.

    The wiki service runs gunicorn's sync workers, which close the connection after every answer,
    so there is nothing to keep alive: each call opens a loopback connection, sends one request
    and reads the answer to its end. Plain asyncio streams with httptools parsing the answer cost
    a fifth of what httpx's pool and anyio layers spend on the same exchange.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        origin = urlsplit(settings.internal_wiki_origin())
        self._address = (origin.hostname, origin.port or 80)
        self._socket = str(settings.internal_wiki_socket)

    async def _send(
        self,
        slug: str,
        authorization: str,
        method: str,
        url: str,
        limit: int,
        params: dict | None = None,
        json_body: dict | None = None,
    ) -> tuple[bytes, str]:
        target = f"{url}?{urlencode(params, quote_via=quote)}" if params else url
        if any(ch in authorization for ch in "\r\n\x00"):
            raise Unauthorized("the Authorization header is malformed")
        body = _json_bytes(json_body) if json_body is not None else b""
        headers = [
            ("Host", self.settings.wiki_host(slug)),
            ("Authorization", authorization),
            ("Connection", "close"),
        ]
        if json_body is not None:
            headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        status, content_type, answer = await self._exchange(request, limit)
        if status >= 400:
            raise _error_from(status, answer)
        if status >= 300:
            raise UpstreamError(f"the wiki answered with an unexpected redirect ({status})")
        return answer, content_type

    async def _connect(self):
        """Open a connection to the wiki service: its unix socket when it has one, else TCP."""
        try:
            return await asyncio.open_unix_connection(self._socket)
        except (FileNotFoundError, ConnectionRefusedError):
            return await asyncio.open_connection(*self._address)

    async def _exchange(self, request: bytes, limit: int) -> tuple[int, str, bytes]:
        """Send one request on a new connection; return (status, content type, body)."""
        # One deadline, moved once connected, instead of asyncio.wait_for around the connect:
        # wait_for runs the connect as a task of its own, an extra task on every call.
        connected = False
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT) as deadline:
                reader, writer = await self._connect()
                connected = True
                deadline.reschedule(asyncio.get_running_loop().time() + TIMEOUT)
                try:
                    writer.write(request)
                    await writer.drain()
                    return await _read_answer(reader, limit)
                finally:
                    writer.close()
        except TimeoutError:
            if connected:
                raise UpstreamError("the wiki did not answer in time") from None
            raise UpstreamError("the wiki service is unreachable: connect timed out") from None
        except OSError as error:
            raise UpstreamError(f"the wiki service is unreachable: {error}") from None

    async def _json(
        self,
        slug: str,
        authorization: str,
        method: str,
        url: str,
        params: dict | None = None,
        body: dict | None = None,
    ) -> dict:
        answer, _ = await self._send(slug, authorization, method, url, MAX_JSON_BYTES, params, body)
        try:
            data = json.loads(answer)
        except ValueError:
            raise UpstreamError("the wiki answered with something that is not JSON") from None
        if not isinstance(data, dict):
            raise UpstreamError("the wiki answered with an unexpected JSON shape")
        return data

    # -- the page API, one method per route -------------------------------------------------

    async def whoami(self, slug: str, auth: str) -> dict:
        return await self._json(slug, auth, "GET", "/api/v1/whoami")

    async def list_pages(self, slug: str, auth: str, prefix: str = "") -> dict:
        params = {"prefix": prefix} if prefix else None
        return await self._json(slug, auth, "GET", "/api/v1/pages", params=params)

    async def read_page(self, slug: str, auth: str, path: str, revision: str | None = None) -> dict:
        params = {"revision": revision} if revision else None
        return await self._json(slug, auth, "GET", _page_url(path), params=params)

    async def write_page(
        self,
        slug: str,
        auth: str,
        path: str,
        content: str,
        message: str | None = None,
        base_revision: str | None = None,
    ) -> dict:
        if len(content.encode()) > MAX_PAGE_BYTES:
            raise PayloadTooLarge(
                f"content is {len(content.encode())} bytes; a page may hold at most "
                f"{MAX_PAGE_BYTES} bytes"
            )
        body = {"content": content}
        if message:
            body["message"] = message
        if base_revision:
            body["base_revision"] = base_revision
        return await self._json(slug, auth, "PUT", _page_url(path), body=body)

    async def delete_page(
        self, slug: str, auth: str, path: str, message: str | None = None
    ) -> dict:
        params = {"message": message} if message else None
        return await self._json(slug, auth, "DELETE", _page_url(path), params=params)

    async def rename_page(
        self,
        slug: str,
        auth: str,
        path: str,
        to: str,
        update_links: bool = False,
        message: str | None = None,
    ) -> dict:
        body = {"to": check_path(to, "new path"), "update_links": update_links}
        if message:
            body["message"] = message
        return await self._json(slug, auth, "POST", _page_url(path, "rename"), body=body)

    async def history(self, slug: str, auth: str, path: str, limit: int) -> dict:
        params = {"limit": limit}
        return await self._json(slug, auth, "GET", _page_url(path, "history"), params=params)

    async def links(self, slug: str, auth: str, path: str) -> dict:
        return await self._json(slug, auth, "GET", _page_url(path, "links"))

    async def orphans(self, slug: str, auth: str) -> dict:
        return await self._json(slug, auth, "GET", "/api/v1/orphans")

    async def search(self, slug: str, auth: str, query: str, limit: int) -> dict:
        params = {"q": query, "limit": limit}
        return await self._json(slug, auth, "GET", "/api/v1/search", params=params)

    async def changes(self, slug: str, auth: str, limit: int) -> dict:
        return await self._json(slug, auth, "GET", "/api/v1/changes", params={"limit": limit})

    async def attachments(self, slug: str, auth: str, path: str) -> dict:
        return await self._json(slug, auth, "GET", _page_url(path, "attachments"))

    async def attachment(
        self, slug: str, auth: str, path: str, name: str, limit: int, revision: str | None = None
    ) -> Blob:
        """Fetch an attachment's bytes; raise PayloadTooLarge past `limit` without buffering it."""
        if not name or "/" in name or name in (".", "..") or "\x00" in name:
            raise BadRequest("attachment name must be a plain file name")
        url = _page_url(path, "attachments", name)
        params = {"revision": revision} if revision else None
        body, content_type = await self._send(slug, auth, "GET", url, limit, params)
        return Blob(body, content_type.split(";")[0].strip() or "application/octet-stream")


def _json_bytes(data: dict) -> bytes:
    # UTF-8 rather than \u escapes: a page of non-Latin text stays near its own size.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


class _Answer:
    """httptools callbacks collecting one answer: status, content type and body up to a limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.headers: dict[bytes, bytes] = {}
        self.chunks: list[bytes] = []
        self.size = 0
        self.headers_done = False
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= self.limit:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True

    def ends_at_close(self) -> bool:
        """Whether the body is framed by the connection closing (no length, not chunked)."""
        return (
            self.headers_done
            and b"content-length" not in self.headers
            and b"transfer-encoding" not in self.headers
        )


async def _read_answer(reader: asyncio.StreamReader, limit: int) -> tuple[int, str, bytes]:
    """Read one answer to its end; raise PayloadTooLarge past `limit` without buffering it."""
    answer = _Answer(limit)
    parser = httptools.HttpResponseParser(answer)
    while not answer.complete:
        data = await reader.read(READ_SIZE)
        if not data:
            if answer.ends_at_close():
                break
            raise OSError("the connection closed before the answer was complete")
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as error:
            raise OSError(f"the wiki's answer is not valid HTTP: {error}") from None
        status = parser.get_status_code() if answer.headers_done else 0
        declared = answer.headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit and status < 400:
            raise PayloadTooLarge(
                f"the answer is {int(declared)} bytes, more than the {limit} bytes allowed"
            )
        if answer.size > limit:
            raise PayloadTooLarge(f"the answer is larger than the {limit} bytes allowed")
    content_type = answer.headers.get(b"content-type", b"").decode("latin-1")
    return parser.get_status_code(), content_type, b"".join(answer.chunks)


def _error_from(status: int, body: bytes) -> RobotError:
    """Turn a page-API error answer into the matching domain error, keeping its message."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        message = data["error"]
        extra = {k: v for k, v in data.items() if k not in ("ok", "error", "status")}
    else:
        message = f"the wiki answered {status}"
        extra = {}
    return _ERRORS.get(status, UpstreamError)(message, **extra)
