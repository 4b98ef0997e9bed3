"""A wiki's pages as MCP resources, for clients that browse resources rather than call tools.

URI scheme: `wiki://{slug}/{path}`, the page path percent-encoded as in a URL path (e.g.
`wiki://team/Projects/Road%20map`); each is `text/markdown`. `resources/list` lists the pages of
the request's wiki (name = path, size in bytes), paged by FastMCP's opaque cursor;
`resources/read` of such a URI, matched by the template `wiki://{wiki}/{path*}`, returns the
page's Markdown as the caller may read it, through the page API like the tools. A URI naming
another wiki, an unknown page or a path the page API refuses is an MCP error saying which.
"""

from __future__ import annotations

from urllib.parse import quote

from fastmcp import FastMCP
from fastmcp.resources import Resource
from fastmcp.server.middleware import Middleware
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR
from mcp.types import INVALID_PARAMS
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
# Pages asked of the page API at a time while listing (its most): one answer of every page of
# a wiki of 10,000 long names could pass the page client's answer cap.
LISTING_CHUNK = 1000


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


class PageResource(Resource):
    """One page in a `resources/list` answer (read through the template, never this object)."""

    size: int | None = None

    def to_mcp_resource(self, **overrides) -> SdkResource:
        """Return the listed resource with its size in bytes, which FastMCP's base class drops."""
        return super().to_mcp_resource(**overrides).model_copy(update={"size": self.size})


class PageResources(Middleware):
    """FastMCP middleware: `resources/list` and `resources/templates/list` of the request's wiki."""

    def __init__(self, pages: PageClient):
        self.pages = pages

    async def on_list_resources(self, context, call_next):
        """Return the server's own resources followed by the wiki's pages."""
        listed = await call_next(context)
        slug, auth = caller()
        found = [
            PageResource(
                uri=page_uri(slug, row["path"]),
                name=row["path"],
                mime_type=MARKDOWN,
                size=row.get("size"),
            )
            async for row in self._every_page(slug, auth)
        ]
        return [*listed, *found]

    async def _every_page(self, slug: str, auth: str | None):
        """Yield each page row of wiki `slug`, asking LISTING_CHUNK at a time; raises the MCP
        error of `listing_error` if the page API refuses."""
        after = ""
        while True:
            try:
                data = await self.pages.list_pages(slug, auth, limit=LISTING_CHUNK, after=after)
            except RobotError as error:
                raise listing_error(error) from None
            for row in data.get("pages", []):
                yield row
            after = data.get("next") or ""
            if not after:
                return

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
    """Register the template that reads a page by its `wiki://{slug}/{path}` URI on `mcp`."""

    # No FastMCP path screening (it answers a '..' or a NUL as "Unknown resource"): the page
    # client and the page API check every path and say what is wrong with it.
    @mcp.resource(TEMPLATE, name="page", mime_type=MARKDOWN, security=None)
    async def read_page_resource(wiki: str, path: str, revision: str | None = None) -> str:
        """A page's Markdown; `wiki` must be this wiki's slug, `path` the page's path, and
        `revision` (optional) a revision to read it at."""
        slug, auth = caller()
        if wiki != slug:
            message = (
                f"{page_uri(wiki, path)!r} names another wiki; this server serves "
                f"{SCHEME}://{slug}/ only"
            )
            raise MCPError(code=INVALID_PARAMS, message=message)
        try:
            data = await pages.read_page(slug, auth, path, revision or None)
        except RobotError as error:
            # The caller's mistake (a missing page, a bad revision) is theirs to fix
            # (-32602), as in listing_error, never an internal error with a traceback logged.
            raise listing_error(error) from None
        return data.get("content", "")
