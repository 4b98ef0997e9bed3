"""An async client of one wiki's page API, acting with the caller's own credentials.

The MCP service reaches the wiki service directly (its unix socket, else
`settings.internal_wiki_origin()`), naming the wiki by its Host header and forwarding the caller's
Authorization header verbatim: there is no master key, so the page API applies exactly the
caller's role in that wiki.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from http.cookiejar import CookieJar
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import quote
from urllib.parse import urlencode

import httpx2

from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import Forbidden
from app.core.errors import NotFound
from app.core.errors import PayloadTooLarge
from app.core.errors import RobotError
from app.core.errors import TooManyRequests
from app.core.errors import Unauthorized
from app.core.errors import Unavailable
from app.core.errors import UpstreamError
from app.core.settings import Settings
from app.pages.names import MAX_PATH_CHARS
from app.pages.paths import MAX_CONTENT_BYTES
from app.pages.paths import clean_attachment_name
from app.pages.paths import clean_new_attachment_name
from app.pages.paths import clean_revision

# The page API's own limits, checked here too so a refused page is never sent.
MAX_PAGE_BYTES = MAX_CONTENT_BYTES
# No answer is buffered past this, so a huge or hostile answer cannot grow the MCP process. A page
# at the limit may take several times its size once JSON-escaped.
MAX_JSON_BYTES = 8 * MAX_PAGE_BYTES
# Slow wiki answers must not pin an MCP request forever; git on a big wiki may take seconds.
# TIMEOUT bounds a whole call (connecting, sending, reading every byte), not each read.
TIMEOUT = 30.0
CONNECT_TIMEOUT = 5.0
# A crowded wiki (429) or its busy write lock (503), both with a Retry-After in seconds: the
# call is sent again after it, while the longest wait is at most BUSY_WAIT_MOST seconds and
# a new try starts within TIMEOUT of the first. Nothing was written by a refused request.
BUSY_WAIT_MOST = 5
# Per address of the wiki service. Its four sync workers answer one request each and the rest
# wait in its listen backlog, so the bound only stops a flood of tool calls from using up our
# file descriptors; calls past it wait for a free connection within their TIMEOUT.
LIMITS = httpx2.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)

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
    if len(cleaned) > MAX_PATH_CHARS:
        raise BadRequest(f"{what} is too long ({MAX_PATH_CHARS} characters at most)")
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
    """The page API of every wiki, over one pool of HTTP/1.1 connections to the wiki service.

    Each method takes the wiki's slug and the caller's Authorization header as sent (None for an
    anonymous reader of a public wiki: the request then carries none), and returns
    the page API's JSON answer as a dict (an attachment as a Blob). Every method raises the domain
    error of an error answer (BadRequest 400, Unauthorized 401, Forbidden 403, NotFound 404,
    Conflict 409 with the answer's extra fields, PayloadTooLarge 413, TooManyRequests 429 with
    its Retry-After, UpstreamError otherwise),
    PayloadTooLarge for an answer past its cap, and UpstreamError when the wiki service cannot be
    reached, breaks off, answers with a redirect or with something not JSON, or takes longer than
    TIMEOUT seconds.

    gunicorn's sync workers close the connection after every answer, so with today's wiki service
    each call still opens a fresh connection (over the unix socket that costs little); the pool
    reuses one whenever the server keeps it open. Close the client with `aclose()` on the event
    loop that used it: the MCP server's lifespan does (app.mcp.tools.build_server).
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._http = httpx2.AsyncClient(
            transport=_WikiService(str(settings.internal_wiki_socket)),
            base_url=settings.internal_wiki_origin(),
            timeout=httpx2.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT),
            # One client serves every caller of every wiki: a cookie one answer sets must never
            # ride along with the next caller's request, so the jar refuses them all.
            cookies=CookieJar(DefaultCookiePolicy(allowed_domains=())),
            # Bodies are read raw and counted against their cap as they arrive, never decoded:
            # a decoder could blow a small gzip body up far past the cap in one step.
            headers={"Accept-Encoding": "identity", "User-Agent": "robot-mcp"},
            # A loopback service: no proxy or netrc from the environment applies to it.
            trust_env=False,
        )

    async def aclose(self) -> None:
        """Close every pooled connection; the client cannot be used afterwards."""
        await self._http.aclose()

    async def _send(self, *args) -> tuple[bytes, str]:
        """`_send_once`, sent again while the wiki refuses it for now (429, or 503 with a
        Retry-After): after the Retry-After and up to as much again at random, so calls refused
        together come back apart, and only while a new try starts within TIMEOUT seconds of the
        first. Waiting here holds no worker of the wiki service, which refuses a crowd of one
        pool's writes at once rather than keep them all waiting for its write lock. Raises as
        `_send_once` does, with its last refusal."""
        give_up = time.monotonic() + TIMEOUT
        while True:
            try:
                return await self._send_once(*args)
            except (TooManyRequests, Unavailable) as refused:
                seconds = refused.retry_after
                if seconds is None or seconds > BUSY_WAIT_MOST:
                    raise
                pause = seconds * (1 + random.random())
                if time.monotonic() + pause > give_up:
                    raise
                await asyncio.sleep(pause)

    async def _send_once(
        self,
        slug: str,
        authorization: str | None,
        method: str,
        url: str,
        limit: int,
        params: dict | None = None,
        json_body: dict | None = None,
        raw: bytes | None = None,
    ) -> tuple[bytes, str]:
        """Send one request as the caller of wiki `slug`; return (body, content type).

        The request body is `json_body` as JSON, or the bytes `raw` as they are. Raises as the
        class says, with PayloadTooLarge past `limit` bytes of answer, and Unauthorized for an
        Authorization header that could smuggle in a header of its own.
        """
        # Encoded here rather than by httpx2, which would write spaces as '+'.
        target = f"{url}?{urlencode(params, quote_via=quote)}" if params else url
        headers = {"Host": self.settings.wiki_host(slug)}
        if authorization:
            if any(ch in authorization for ch in "\r\n\x00"):
                raise Unauthorized("the Authorization header is malformed")
            headers["Authorization"] = authorization
        body = raw
        if json_body is not None:
            body = _json_bytes(json_body)
            headers["Content-Type"] = "application/json"
        elif raw is not None:
            headers["Content-Type"] = "application/octet-stream"
        try:
            async with asyncio.timeout(TIMEOUT):
                request = self._http.stream(method, target, headers=headers, content=body)
                async with request as answer:
                    data = await _read_capped(answer, limit)
        except httpx2.InvalidURL as error:
            # A parameter too long for a URL (a 64 KiB revision): httpx2 refuses to send it.
            raise BadRequest(f"the request could not be sent: {str(error)[:200]}") from None
        except httpx2.ConnectTimeout:
            raise UpstreamError("the wiki service is unreachable: connect timed out") from None
        except (TimeoutError, httpx2.TimeoutException):
            raise UpstreamError("the wiki did not answer in time") from None
        except httpx2.TransportError as error:
            raise UpstreamError(f"the wiki service is unreachable: {error}") from None
        if answer.status_code >= 400:
            raise _error_from(answer.status_code, data, answer.headers.get("retry-after"))
        if answer.status_code >= 300:
            raise UpstreamError(
                f"the wiki answered with an unexpected redirect ({answer.status_code})"
            )
        return data, answer.headers.get("content-type", "")

    async def _json(
        self,
        slug: str,
        authorization: str | None,
        method: str,
        url: str,
        params: dict | None = None,
        body: dict | None = None,
        raw: bytes | None = None,
    ) -> dict:
        answer, _ = await self._send(
            slug, authorization, method, url, MAX_JSON_BYTES, params, body, raw
        )
        try:
            data = json.loads(answer)
        except ValueError:
            raise UpstreamError("the wiki answered with something that is not JSON") from None
        if not isinstance(data, dict):
            raise UpstreamError("the wiki answered with an unexpected JSON shape")
        return data

    # -- the page API, one method per route -------------------------------------------------

    async def whoami(self, slug: str, auth: str | None) -> dict:
        """GET /api/v1/whoami: the caller's handle, role and permissions in the wiki."""
        return await self._json(slug, auth, "GET", "/api/v1/whoami")

    async def list_pages(
        self,
        slug: str,
        auth: str | None,
        prefix: str = "",
        limit: int | None = None,
        after: str = "",
    ) -> dict:
        """GET /api/v1/pages: the pages (under `prefix` when given) in order of path, after the
        path `after`; with `limit`, at most that many, and `next` in the answer while more
        follow (None: every one)."""
        asked = (("prefix", prefix), ("after", after), ("limit", str(limit) if limit else ""))
        params = {name: value for name, value in asked if value}
        return await self._json(slug, auth, "GET", "/api/v1/pages", params=params or None)

    async def read_page(
        self, slug: str, auth: str | None, path: str, revision: str | None = None
    ) -> dict:
        """GET a page: its Markdown, revision and last change, at `revision` when given."""
        params = {"revision": clean_revision(revision)} if revision else None
        return await self._json(slug, auth, "GET", _page_url(path), params=params)

    async def write_page(
        self,
        slug: str,
        auth: str | None,
        path: str,
        content: str,
        message: str | None = None,
        base_revision: str | None = None,
    ) -> dict:
        """PUT a page's new Markdown; refuse past MAX_PAGE_BYTES (UTF-8) before sending.

        With `base_revision`, the page API merges over changes made since (the answer says
        `merged`), or answers Conflict with the details when they overlap.
        """
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

    async def append_page(
        self, slug: str, auth: str | None, path: str, content: str, message: str | None = None
    ) -> dict:
        """POST a paragraph to add at the end of a page (created if missing); refuse past
        MAX_PAGE_BYTES (UTF-8) before sending."""
        if len(content.encode()) > MAX_PAGE_BYTES:
            raise PayloadTooLarge(
                f"content is {len(content.encode())} bytes; a page may hold at most "
                f"{MAX_PAGE_BYTES} bytes"
            )
        body = {"content": content} | ({"message": message} if message else {})
        return await self._json(slug, auth, "POST", _page_url(path, "append"), body=body)

    async def delete_page(
        self, slug: str, auth: str | None, path: str, message: str | None = None
    ) -> dict:
        """DELETE a page, committing with `message` when given."""
        params = {"message": message} if message else None
        return await self._json(slug, auth, "DELETE", _page_url(path), params=params)

    async def rename_page(
        self,
        slug: str,
        auth: str | None,
        path: str,
        to: str,
        update_links: bool = False,
        message: str | None = None,
    ) -> dict:
        """Rename a page to `to`, rewriting links to it when `update_links`."""
        body = {"to": check_path(to, "new path"), "update_links": update_links}
        if message:
            body["message"] = message
        return await self._json(slug, auth, "POST", _page_url(path, "rename"), body=body)

    async def history(self, slug: str, auth: str | None, path: str, limit: int) -> dict:
        """GET a page's history: its newest `limit` revisions."""
        params = {"limit": limit}
        return await self._json(slug, auth, "GET", _page_url(path, "history"), params=params)

    async def links(self, slug: str, auth: str | None, path: str) -> dict:
        """GET a page's links: the pages it links to and those linking to it."""
        return await self._json(slug, auth, "GET", _page_url(path, "links"))

    async def orphans(self, slug: str, auth: str | None) -> dict:
        """GET /api/v1/orphans: the pages no other page links to."""
        return await self._json(slug, auth, "GET", "/api/v1/orphans")

    async def search(self, slug: str, auth: str | None, query: str, limit: int) -> dict:
        """GET /api/v1/search: at most `limit` pages matching `query`."""
        params = {"q": query, "limit": limit}
        return await self._json(slug, auth, "GET", "/api/v1/search", params=params)

    async def changes(self, slug: str, auth: str | None, limit: int, by: str = "all") -> dict:
        """GET /api/v1/changes: the wiki's newest `limit` changes; `by` all|agents|people."""
        params = {"limit": limit, "by": by}
        return await self._json(slug, auth, "GET", "/api/v1/changes", params=params)

    async def attachments(self, slug: str, auth: str | None, path: str) -> dict:
        """GET the list of a page's attachments."""
        return await self._json(slug, auth, "GET", _page_url(path, "attachments"))

    async def attachment(
        self,
        slug: str,
        auth: str | None,
        path: str,
        name: str,
        limit: int,
        revision: str | None = None,
    ) -> Blob:
        """Fetch an attachment's bytes, at most `limit` of them (else PayloadTooLarge, unread)."""
        url = _page_url(path, "attachments", clean_attachment_name(name))
        params = {"revision": clean_revision(revision)} if revision else None
        body, content_type = await self._send(slug, auth, "GET", url, limit, params)
        return Blob(body, content_type.split(";")[0].strip() or "application/octet-stream")

    async def upload_attachment(
        self, slug: str, auth: str, path: str, name: str, data: bytes, message: str | None = None
    ) -> dict:
        """PUT an attachment's bytes (adding or replacing it): name, size, mime, revision.

        The name rules and the size cap (settings.max_attachment_bytes) are checked before
        anything is sent: BadRequest, PayloadTooLarge.
        """
        cap = self.settings.max_attachment_bytes
        if len(data) > cap:
            raise PayloadTooLarge(
                f"the file is {len(data)} bytes; an attachment may hold at most {cap} bytes"
            )
        url = _page_url(path, "attachments", clean_new_attachment_name(name))
        params = {"message": message} if message else None
        return await self._json(slug, auth, "PUT", url, params=params, raw=data)

    async def delete_attachment(
        self, slug: str, auth: str, path: str, name: str, message: str | None = None
    ) -> dict:
        """DELETE an attachment, committing with `message` when given: name, revision."""
        url = _page_url(path, "attachments", clean_attachment_name(name))
        params = {"message": message} if message else None
        return await self._json(slug, auth, "DELETE", url, params=params)


def _json_bytes(data: dict) -> bytes:
    # UTF-8 rather than \u escapes: a page of non-Latin text stays near its own size.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


class _WikiService(httpx2.AsyncBaseTransport):
    """The wiki service's unix socket while it listens there, else its TCP address.

    Tried per connection, not once at startup: the wiki service may start after this one, and a
    deployment (or a test) may run it on TCP alone.
    """

    def __init__(self, socket_path: str):
        self._unix = httpx2.AsyncHTTPTransport(uds=socket_path, limits=LIMITS)
        self._tcp = httpx2.AsyncHTTPTransport(limits=LIMITS)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send `request` over the unix socket, or over TCP when nothing listens there."""
        try:
            return await self._unix.handle_async_request(request)
        except httpx2.ConnectError:
            # No connection, so nothing was sent: trying the other address is safe for a PUT too.
            return await self._tcp.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the pooled connections of both addresses."""
        await self._unix.aclose()
        await self._tcp.aclose()


async def _read_capped(answer: httpx2.Response, limit: int) -> bytes:
    """Read a streamed answer's body; raise PayloadTooLarge past `limit` bytes.

    Stops reading at the cap, so a huge body is never held; leaving the stream unread makes the
    pool close that connection instead of reusing it.
    """
    declared = answer.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"the answer is {declared} bytes, more than the {limit} bytes allowed"
        )
    chunks = []
    size = 0
    async for chunk in answer.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the answer is larger than the {limit} bytes allowed")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_from(status: int, body: bytes, retry_after: str | None = None) -> RobotError:
    """Turn a page-API error answer into the matching domain error, keeping its message; a 429
    keeps its Retry-After (RFC 9110 section 10.2.3: seconds; an HTTP date is read as 1 s), and
    a 503 its Retry-After when it gives one in seconds."""
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
    if status == TooManyRequests.status:
        seconds = int(retry_after) if retry_after and retry_after.isdigit() else 1
        return TooManyRequests(f"{message} (retry after {seconds} s)", retry_after=seconds, **extra)
    if status == Unavailable.status and retry_after and retry_after.isdigit():
        return Unavailable(message, retry_after=int(retry_after), **extra)
    return _ERRORS.get(status, UpstreamError)(message, **extra)
