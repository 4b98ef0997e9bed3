"""An async client of one wiki's page API, acting with the caller's own credentials.

The MCP service reaches the wiki service directly (`settings.internal_wiki_origin()`), naming the
wiki by its Host header and forwarding the caller's Authorization header verbatim: there is no
master key, so the page API applies exactly the caller's role in that wiki.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

import httpx2

from app.errors import BadRequest
from app.errors import Conflict
from app.errors import Forbidden
from app.errors import NotFound
from app.errors import PayloadTooLarge
from app.errors import RobotError
from app.errors import Unauthorized
from app.errors import UpstreamError
from app.settings import Settings

# The page API's own limit (pagepaths.MAX_CONTENT_BYTES): refused here before it is sent.
MAX_PAGE_BYTES = 1024 * 1024
# No answer is buffered past this, so a huge or hostile answer cannot grow the MCP process. A page
# at the limit may take several times its size once JSON-escaped.
MAX_JSON_BYTES = 8 * MAX_PAGE_BYTES
# Slow wiki answers must not pin an MCP request forever; git on a big wiki may take seconds.
TIMEOUT = httpx2.Timeout(30.0, connect=5.0)
# One pool for every wiki and caller: the wiki service is one upstream on loopback.
LIMITS = httpx2.Limits(max_connections=32, max_keepalive_connections=16, keepalive_expiry=30)

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
    """The page API of every wiki, over one shared connection pool."""

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None):
        self.settings = settings
        self._transport = transport
        self._client: httpx2.AsyncClient | None = None

    @property
    def client(self) -> httpx2.AsyncClient:
        # Created on first use so it binds to the server's event loop, not the importer's.
        if self._client is None:
            self._client = httpx2.AsyncClient(
                base_url=self.settings.internal_wiki_origin(),
                timeout=TIMEOUT,
                limits=LIMITS,
                transport=self._transport,
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send(
        self, slug: str, authorization: str, method: str, url: str, limit: int, **kwargs
    ) -> tuple[bytes, str]:
        headers = {"Host": self.settings.wiki_host(slug), "Authorization": authorization}
        try:
            async with self.client.stream(method, url, headers=headers, **kwargs) as response:
                body = await _read_capped(response, limit)
                content_type = response.headers.get("content-type", "")
                status = response.status_code
        except httpx2.TimeoutException:
            raise UpstreamError("the wiki did not answer in time") from None
        except httpx2.TransportError as error:
            raise UpstreamError(f"the wiki service is unreachable: {error}") from None
        if status >= 400:
            raise _error_from(status, body)
        if status >= 300:
            raise UpstreamError(f"the wiki answered with an unexpected redirect ({status})")
        return body, content_type

    async def _json(self, slug: str, authorization: str, method: str, url: str, **kwargs) -> dict:
        body, _ = await self._send(slug, authorization, method, url, MAX_JSON_BYTES, **kwargs)
        try:
            data = json.loads(body)
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
        return await self._json(slug, auth, "PUT", _page_url(path), json=body)

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
        return await self._json(slug, auth, "POST", _page_url(path, "rename"), json=body)

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
        body, content_type = await self._send(slug, auth, "GET", url, limit, params=params)
        return Blob(body, content_type.split(";")[0].strip() or "application/octet-stream")


async def _read_capped(response: httpx2.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit and response.status_code < 400:
        raise PayloadTooLarge(
            f"the answer is {int(declared)} bytes, more than the {limit} bytes allowed"
        )
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the answer is larger than the {limit} bytes allowed")
        chunks.append(chunk)
    return b"".join(chunks)


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
