"""A wiki's pages as MCP resources, for clients that browse resources rather than call tools.

URI scheme: `wiki://{slug}/{path}`, the page path percent-encoded as in a URL path (e.g.
`wiki://team/Projects/Road%20map`); each is `text/markdown`. `resources/list` lists the pages of
the request's wiki (name = path, size in bytes), PAGE_SIZE an answer, each answer one page API
call from where the last ended (its cursor names the last path listed, not an offset);
`resources/read` of such a URI, matched by the template `wiki://{wiki}/{path*}`, returns the
page's Markdown as the caller may read it, through the page API like the tools. A URI naming
another wiki, an unknown page or a path the page API refuses is an MCP error saying which.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from urllib.parse import quote

from fastmcp import FastMCP
from fastmcp.resources import Resource
from fastmcp.server.middleware import Middleware
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR
from mcp.types import INVALID_PARAMS
from mcp.types import ListResourcesResult
from mcp.types import Resource as SdkResource

from app.core.errors import RobotError
from app.mcp.context import caller
from app.mcp.page_client import PageClient

SCHEME = "wiki"
# `?revision=<sha>` reads the page as of that revision (RFC 6570 query expression).
TEMPLATE = SCHEME + "://{wiki}/{path*}{?revision}"
MARKDOWN = "text/markdown"
# resources/list pages per answer: a wiki of thousands of pages takes a few round trips, and
# no single answer grows with the wiki.
PAGE_SIZE = 200
# What a cursor this server did not give is told (INVALID_PARAMS, as MCP's pagination says).
BAD_CURSOR = "Invalid params: this cursor is not one this server gave; list from the start"
# The longest `after` the page API takes (app.pages.storage.Pages.list), in characters.
MAX_AFTER_CHARS = 500


def page_uri(slug: str, path: str) -> str:
    """Return the resource URI of page `path` in wiki `slug`."""
    return f"{SCHEME}://{slug}/{quote(path, safe='/')}"


# JSON-RPC 2.0 leaves -32000 to -32099 to the server: here, "busy, try again after
# `data.retryAfter` seconds" (the wiki answered 429, or 503 with Retry-After).
SERVER_BUSY = -32000


def listing_error(error: RobotError) -> MCPError:
    """The MCP error for a page API refusal while listing resources.

    A wiki that is busy (429, or 503 with a Retry-After) is SERVER_BUSY with `data`
    `{"status": <HTTP status>, "retryAfter": <seconds>}`, so a client waits instead of
    taking its request for a bad one; another 4xx is INVALID_PARAMS; anything else
    INTERNAL_ERROR.
    """
    if error.status == 429 or (error.status == 503 and error.retry_after is not None):
        data = {"status": error.status, "retryAfter": error.retry_after or 1}
        return MCPError(code=SERVER_BUSY, message=error.message, data=data)
    code = INVALID_PARAMS if error.status < 500 else INTERNAL_ERROR
    return MCPError(code=code, message=error.message)


class CallersMistakesUnlogged(logging.Filter):
    """Drops FastMCP's record of a resources/read refused for the caller's mistake or a busy
    wiki (INVALID_PARAMS, SERVER_BUSY): FastMCP logs every MCPError a read raises with its
    traceback (fastmcp.server.server, "Error reading resource"), so a client reading missing
    pages in a loop filled the service's log with tracebacks no operator needs. The caller
    has the error; the service's own failures (INTERNAL_ERROR) are still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        mistaken = isinstance(error, MCPError) and error.error.code in (INVALID_PARAMS, SERVER_BUSY)
        return not (mistaken and str(record.msg).startswith("Error reading resource"))


_UNLOGGED = CallersMistakesUnlogged()


class PageResource(Resource):
    """One page in a `resources/list` answer (read through the template, never this object)."""

    size: int | None = None

    def to_mcp_resource(self, **overrides) -> SdkResource:
        """Return the listed resource with its size in bytes, which FastMCP's base class drops."""
        return super().to_mcp_resource(**overrides).model_copy(update={"size": self.size})


def encode_cursor(after: str) -> str:
    """The resources/list cursor that continues after page path `after`: base64url of
    `{"after": <path>}`, opaque to clients (MCP 2025-06-18, utilities/pagination)."""
    data = json.dumps({"after": after}, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(data).decode("ascii")


def decode_cursor(cursor) -> str:
    """The page path a resources/list `cursor` (from encode_cursor) continues after. Raises
    ValueError for anything encode_cursor does not give: not a string, not base64url of a JSON
    object, or an `after` that is no string of at most MAX_AFTER_CHARS characters, or that
    UTF-8 cannot encode."""
    if not isinstance(cursor, str):
        raise ValueError("not a string")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (UnicodeError, binascii.Error, json.JSONDecodeError):
        raise ValueError("not a cursor this server gives") from None
    after = data.get("after") if isinstance(data, dict) else None
    if not isinstance(after, str) or not after or len(after) > MAX_AFTER_CHARS:
        raise ValueError("not a cursor this server gives")
    try:
        after.encode("utf-8")  # a lone surrogate (JSON allows "\ud800") names no page
    except UnicodeEncodeError:
        raise ValueError("not a cursor this server gives") from None
    return after


async def list_page_resources(server: FastMCP, pages: PageClient, cursor) -> ListResourcesResult:
    """One resources/list answer for the request's wiki: with no `cursor`, the server's own
    resources and its first PAGE_SIZE pages; with one, the PAGE_SIZE pages after the path it
    names. `next_cursor` is set while more pages follow.

    One page API call per answer, from where the cursor points: FastMCP's own paging lists
    everything and then slices by offset, so every answer cost a whole listing of the wiki, and
    a page made between two answers shifted the offsets (listed twice, or skipped).
    Raises MCPError: INVALID_PARAMS for a cursor this server did not give, and listing_error's
    for a page API refusal.
    """
    try:
        after = decode_cursor(cursor) if cursor is not None else ""
    except ValueError:
        raise MCPError(code=INVALID_PARAMS, message=BAD_CURSOR) from None
    own = (
        [] if after else [r.to_mcp_resource(uri=str(r.uri)) for r in await server.list_resources()]
    )
    slug, auth = caller()
    try:
        data = await pages.list_pages(slug, auth, limit=PAGE_SIZE, after=after)
    except RobotError as error:
        raise listing_error(error) from None
    found = [
        PageResource(
            uri=page_uri(slug, row["path"]),
            name=row["path"],
            mime_type=MARKDOWN,
            size=row.get("size"),
        ).to_mcp_resource()
        for row in data.get("pages", [])
    ]
    following = data.get("next")
    return ListResourcesResult(
        resources=[*own, *found], next_cursor=encode_cursor(following) if following else None
    )


class PageTemplates(Middleware):
    """FastMCP middleware: `resources/templates/list` shows the page template for the request's
    wiki only."""

    async def on_list_resource_templates(self, context, call_next):
        """Return the templates with the page template shown for this wiki only:
        `wiki://{slug}/{path*}{?revision}` with the request's slug, as the only wiki it reads."""
        slug, _ = caller()
        shown = f"{SCHEME}://{slug}/{{path*}}{{?revision}}"
        return [
            template.model_copy(update={"uri_template": shown})
            if template.uri_template == TEMPLATE
            else template
            for template in await call_next(context)
        ]


def add_page_template(mcp: FastMCP, pages: PageClient) -> None:
    """Register the template that reads a page by its `wiki://{slug}/{path}` URI on `mcp`,
    and keep the caller's mistakes in reading it out of FastMCP's log (CallersMistakesUnlogged)."""
    logging.getLogger("fastmcp.server.server").addFilter(_UNLOGGED)  # added once, for every server

    # No FastMCP path screening (it answers a '..' or a NUL as "Unknown resource"): the page
    # client and the page API check every path and say what is wrong with it.
    @mcp.resource(TEMPLATE, name="page", mime_type=MARKDOWN, security=None)
    async def read_page_resource(wiki: str, path: str, revision: str | None = None) -> str:
        """A page's Markdown; `wiki` must be this wiki's slug, `path` the page's path, and
        `revision` (optional) a revision to read it at."""
        slug, auth = caller()
        if wiki != slug:
            named = page_uri(wiki, path)
            shown = named if len(named) <= 200 else named[:200] + "..."  # never echo 64 KiB
            message = f"{shown!r} names another wiki; this server serves {SCHEME}://{slug}/ only"
            raise MCPError(code=INVALID_PARAMS, message=message)
        try:
            data = await pages.read_page(slug, auth, path, revision or None)
        except RobotError as error:
            # The caller's mistake (a missing page, a bad revision) is theirs to fix
            # (-32602), as in listing_error, never an internal error with a traceback logged.
            raise listing_error(error) from None
        return data.get("content", "")
