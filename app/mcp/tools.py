"""The MCP tools agents use to live in a wiki; each acts through the page API as its caller."""

from __future__ import annotations

import base64
from contextlib import asynccontextmanager
from typing import Annotated
from typing import Literal
from urllib.parse import quote

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import bind_request_context
from fastmcp.tools.base import ToolResult
from mcp.types import BlobResourceContents
from mcp.types import EmbeddedResource
from mcp.types import ImageContent
from mcp.types import TextContent
from pydantic import Field

from app.core.errors import Conflict
from app.core.errors import RobotError
from app.core.version import VERSION
from app.mcp import resources
from app.mcp.arguments import ArgumentErrors
from app.mcp.context import caller
from app.mcp.identity import WikiIdentity
from app.mcp.page_client import PageClient
from app.pages import text as page_text
from app.pages.fulltext import pieces
from app.pages.query import MAX_QUERY_CHARS
from app.pages.query import SYNTAX_HELP

# Outside a wiki's request (FastMCP's in-memory client) the server has no wiki to introduce;
# over HTTP, app/mcp/identity.py answers with the wiki's own name and instructions.
NAME = "robot"
# Edits that race with another writer are re-applied to the new text this many times.
EDIT_ATTEMPTS = 3
DEFAULT_ATTACHMENT_BYTES = 1024 * 1024
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
_TEXT_TYPES = {"application/json", "application/xml", "application/javascript", "application/yaml"}

# Hints for clients deciding what to confirm with the user (MCP tool annotations).
READ_ONLY = {"readOnlyHint": True, "openWorldHint": False}
CHANGES = {"readOnlyHint": False, "destructiveHint": True, "openWorldHint": False}
ADDS = {"readOnlyHint": False, "destructiveHint": False, "openWorldHint": False}

Path = Annotated[str, Field(description="Page path, e.g. 'Home' or 'Projects/Robot'.")]
Message = Annotated[str | None, Field(description="Commit message (optional).")]
Limit = Annotated[int, Field(ge=1, le=200, description="How many entries at most (1-200).")]
By = Annotated[
    Literal["all", "agents", "people"],
    Field(description="Whose changes: 'agents' (made with a token or OAuth), 'people', 'all'."),
]


async def _api(call):
    """Await a page-API call; its errors become tool errors carrying the page API's message."""
    try:
        return await call
    except RobotError as error:
        raise ToolError(error.message) from None


def _who(entry: dict) -> str:
    """`by <person>[ via <agent> (<kind>)]` of a revision or a page read."""
    who = f"by {entry.get('author')}"
    via = entry.get("via")
    if via:
        kind = "token" if via.get("kind") == "token" else "OAuth client"
        who += f" via {via.get('name')} ({kind})"
    return who


def _change_line(entry: dict) -> str:
    """One revision as one line: `<sha>  <date>  by <person>[ via <agent> (<kind>)]  <message>`
    (the message's whitespace collapsed)."""
    who = _who(entry)
    # One line per entry: a message's own line breaks could otherwise pass for other entries.
    message = " ".join(str(entry.get("message") or "").split())
    return f"{entry['revision']}  {entry.get('date')}  {who}  {message}"


def _result(text: str, data: dict) -> ToolResult:
    return ToolResult(content=text, structured_content=data)


def _conflict_text(error: Conflict, path: str) -> str:
    """The tool error for a write the page API refused with 409: why, the page's revision now,
    and for overlapping changes the diff from the current text to the agent's, to resolve."""
    current = error.extra.get("current_revision")
    if not current:
        return (
            f"Conflict on {path!r}: {error.message}. If it should exist, write it again "
            "without base_revision."
        )
    text = (
        f"Conflict on {path!r}: {error.message}. The page is now at revision {current}; "
        "read it again, merge your change and retry with that base_revision."
    )
    conflict = error.extra.get("conflict")
    if isinstance(conflict, dict) and conflict.get("with_markers"):
        # The merge with git's markers, not a diff of the whole texts: a diff from the current
        # text to yours also shows others' changes you kept as if you undid them.
        text += (
            f"\n\nYour change overlaps a change by {_names(conflict.get('authors'))} made "
            "since your base_revision. The page with both merged, each overlap between git's "
            "markers (<<<<<<< yours, =======, >>>>>>> current):\n"
            f"{conflict['with_markers']}"
        )
    return text


def _names(authors) -> str:
    """'a', 'a and b', 'a, b and c'; 'someone else' for none."""
    names = [str(name) for name in authors or []]
    if not names:
        return "someone else"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _written_text(verb: str, data: dict) -> str:
    """What a successful write says: the new revision, and whose change it was merged over."""
    text = f"{verb} {data['path']}; now at revision {data['revision']}."
    if data.get("merged"):
        text += (
            f" The page had changed since the revision your change started from (revision "
            f"{data.get('merged_over')} by {_names(data.get('merged_authors'))}); your change "
            "did not overlap theirs and was merged with it."
        )
    return text


class WikiServer(FastMCP):
    """FastMCP whose tools all come from its own (local) provider, and whose resources/list
    pages through the wiki's pages with the page API (`pages`, a PageClient).

    FastMCP looks a called tool up in every provider at once, through a task group with one task
    per provider; with a single provider that spawns a task per call for nothing (0.1-0.5 ms per
    read_page on a loaded machine). `_get_tool` is the provider hook FastMCP itself overrides.
    """

    def __init__(self, *args, pages: PageClient | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pages = pages

    async def _on_list_resources(self, ctx, params):
        """resources/list, answered by resources.list_page_resources: one page API call per
        answer, paged by the last path listed (FastMCP's own lists the whole wiki each time).
        Without `pages`, FastMCP's own."""
        if self.pages is None:
            return await super()._on_list_resources(ctx, params)
        with bind_request_context(ctx):
            return await resources.list_page_resources(self, self.pages, params and params.cursor)

    async def _get_tool(self, name: str, version=None):
        if len(self.providers) == 1:
            tool = await self.providers[0].get_tool(name, version)
            # A tool with its own auth checks takes FastMCP's full path, which applies them.
            if tool is None or tool.auth is None:
                return tool
        return await super()._get_tool(name, version)


def build_server(pages: PageClient) -> FastMCP:
    """Return the FastMCP server with every wiki tool bound to `pages`.

    The server owns `pages` from then on: its lifespan closes it, so the pooled connections to the
    wiki service go when the app shuts down.
    """

    # Entered once when the ASGI app starts (the session manager enters it and stateless requests
    # share it) and left at shutdown, still on the event loop the connections were opened on.
    @asynccontextmanager
    async def lifespan(server: FastMCP):
        try:
            yield {}
        finally:
            await pages.aclose()

    # Our parameter schemas are flat (no $ref), so FastMCP's dereferencing pass is pure cost.
    mcp = WikiServer(
        NAME,
        version=VERSION,
        mask_error_details=True,
        dereference_schemas=False,
        lifespan=lifespan,
        list_page_size=resources.PAGE_SIZE,
        pages=pages,
        middleware=[
            ArgumentErrors(),  # bad arguments: a short isError result, every tool
            WikiIdentity(pages),
            resources.PageTemplates(),
        ],
    )
    resources.add_page_template(mcp, pages)

    async def put(path, content, message, base_revision) -> dict:
        slug, auth = caller()
        try:
            return await pages.write_page(slug, auth, path, content, message, base_revision)
        except Conflict as error:
            raise ToolError(_conflict_text(error, path)) from None
        except RobotError as error:
            raise ToolError(error.message) from None

    @mcp.tool(annotations=READ_ONLY)
    async def whoami() -> ToolResult:
        """Tell who you are in this wiki: your handle, role and what you may do."""
        slug, auth = caller()
        data = await _api(pages.whoami(slug, auth))
        text = (
            f"You are {data.get('handle') or data.get('did') or 'an anonymous reader'} in wiki "
            f"{data.get('wiki')}, role "
            f"{data.get('role') or 'none'}; permissions: {', '.join(data.get('permissions', []))}."
        )
        return _result(text, data)

    @mcp.tool(annotations=READ_ONLY)
    async def read_page(
        path: Path,
        revision: Annotated[
            str | None, Field(description="Read the page as of this revision (optional).")
        ] = None,
        section: Annotated[
            str | None, Field(description="Return only the section under this heading.")
        ] = None,
    ) -> ToolResult:
        """Read a page's Markdown, optionally at an older revision or just one section.

        The answer is two text blocks: the page's metadata (path, revision, last change) and its
        Markdown. Pass the revision as base_revision when writing.
        """
        slug, auth = caller()
        data = await _api(pages.read_page(slug, auth, path, revision))
        content = data.pop("content", "")
        if section:
            try:
                content = page_text.section_of(content, section)
            except RobotError as error:
                raise ToolError(error.message) from None
            data["section"] = section
        header = (
            f"page: {data['path']}\nrevision: {data.get('revision')}\n"
            f"last changed: {data.get('last_changed')} {_who(data)}"
        )
        # The Markdown is sent once, as its own block (not again inside structured content):
        # a page's text is most of the answer and serialising it twice costs every read.
        blocks = [TextContent(type="text", text=header), TextContent(type="text", text=content)]
        return ToolResult(blocks, {**data, "size": len(content.encode())})

    @mcp.tool(annotations=CHANGES)
    async def write_page(
        path: Path,
        content: Annotated[str, Field(description="The complete new Markdown of the page.")],
        message: Message = None,
        base_revision: Annotated[
            str | None,
            Field(
                description="Revision you read; changes made since are merged with yours, or "
                "nothing is written if they overlap."
            ),
        ] = None,
    ) -> ToolResult:
        """Create a page or replace its whole content.

        Pass base_revision (from read_page) so someone else's change made since is kept: it is
        merged with yours when the two do not overlap, else you get a conflict with the diff.
        """
        data = await put(path, content, message, base_revision)
        return _result(_written_text("Created" if data.get("created") else "Updated", data), data)

    async def rewrite(path, transform, message, base_revision=None) -> dict:
        """Read a page, transform its text, write it back on top of the revision read.

        Without `base_revision` the current text is read, and a race with another writer that
        cannot be merged is retried on the newer text. With it, the text at `base_revision` is
        transformed and the page API merges that over changes made since, or refuses (a
        conflict).
        """
        slug, auth = caller()
        for attempt in range(EDIT_ATTEMPTS):
            try:
                page = await pages.read_page(slug, auth, path, base_revision)
            except RobotError as error:
                raise ToolError(error.message) from None
            revision = base_revision or page.get("revision")
            try:
                updated = transform(page.get("content", ""))
            except RobotError as error:
                if base_revision:  # the span may be in the page now, just not at that revision
                    raise ToolError(
                        f"{error.message} (in the page as it was at revision {base_revision}, "
                        "the base_revision you gave; read the page again for its current text)"
                    ) from None
                raise ToolError(error.message) from None
            try:
                return await pages.write_page(slug, auth, path, updated, message, revision)
            except Conflict as error:
                if base_revision or attempt == EDIT_ATTEMPTS - 1:
                    raise ToolError(_conflict_text(error, path)) from None
            except RobotError as error:
                raise ToolError(error.message) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    @mcp.tool(annotations=CHANGES)
    async def edit_page(
        path: Path,
        old_text: Annotated[str, Field(description="Exact text to replace; must occur once.")],
        new_text: Annotated[str, Field(description="Text to put in its place (may be empty).")],
        message: Message = None,
        base_revision: Annotated[
            str | None,
            Field(
                description="Revision you read: the span is replaced in that text and merged "
                "with changes made since, or nothing is written if they overlap."
            ),
        ] = None,
    ) -> ToolResult:
        """Replace one exact span of a page's text, leaving the rest untouched.

        Fails clearly when the span is absent or occurs more than once. Without base_revision,
        an edit that races with another writer is re-applied to the newer text.
        """
        data = await rewrite(
            path,
            lambda text: page_text.replace_span(text, old_text, new_text),
            message,
            base_revision,
        )
        return _result(_written_text("Edited", data), data)

    @mcp.tool(annotations=ADDS)
    async def append_to_page(
        path: Path,
        content: Annotated[str, Field(description="Markdown to add at the end of the page.")],
        message: Message = None,
    ) -> ToolResult:
        """Add text at the end of a page as a new paragraph, creating the page if needed.

        Appends never conflict: the wiki adds the paragraph to the page as it is then.
        """
        slug, auth = caller()
        data = await _api(pages.append_page(slug, auth, path, content, message))
        return _result(f"Appended to {data['path']}; now at revision {data['revision']}.", data)

    @mcp.tool(annotations=READ_ONLY)
    async def list_pages(
        prefix: Annotated[
            str, Field(description="Only pages whose path starts with this (optional).")
        ] = "",
        limit: Limit = 200,
        after: Annotated[
            str,
            Field(max_length=500, description="Only pages after this path (the answer's next)."),
        ] = "",
    ) -> ToolResult:
        """List the wiki's pages in order of path, with their size in bytes and when they last
        changed; at most `limit`, and `next` to pass as `after` while more follow."""
        slug, auth = caller()
        data = await _api(pages.list_pages(slug, auth, prefix, limit, after))
        rows = data.get("pages", [])
        lines = [f"{p['path']}  ({p.get('size')} bytes, {p.get('last_changed')})" for p in rows]
        text = f"{len(rows)} page(s)" + (f" under {prefix!r}" if prefix else "")
        if data.get("next"):
            lines.append(f"More follow: call again with after={data['next']!r}.")
        return _result("\n".join([text + ":", *lines]) if rows else text + ".", data)

    @mcp.tool(annotations=READ_ONLY)
    async def search_pages(
        query: Annotated[
            str, Field(min_length=1, max_length=MAX_QUERY_CHARS, description=SYNTAX_HELP)
        ],
        limit: Limit = 20,
    ) -> ToolResult:
        """Search every page's name and text; return matching pages, most relevant first.

        Query syntax: `retro friday` finds pages with both words in any order; `"retro on
        friday"` a phrase; `retro*` words starting with retro; `retro OR review` either;
        `-draft` leaves out pages with draft. Case and accents are ignored; other punctuation
        is plain text, never an operator. Each result has a snippet with the matched words in
        **bold** here, and `highlights` offsets in the structured result.
        """
        slug, auth = caller()
        data = await _api(pages.search(slug, auth, query, limit))
        results = data.get("results", [])
        lines = [f"{len(results)} page(s) match {query!r}."]
        for hit in results:
            lines.append(f"\n## {hit['path']}")
            spans = hit.get("highlights", [])
            for i, snippet in enumerate(hit.get("snippets", [])):
                cut = pieces(snippet, spans[i] if i < len(spans) else [])
                lines.append("  " + "".join(f"**{p}**" if bold else p for p, bold in cut))
        return _result("\n".join(lines), data)

    @mcp.tool(annotations=READ_ONLY)
    async def get_history(path: Path, limit: Limit = 20) -> ToolResult:
        """List a page's revisions, newest first: revision, date, who (and through which
        agent), message."""
        slug, auth = caller()
        data = await _api(pages.history(slug, auth, path, limit))
        lines = [f"History of {data.get('path', path)}:"]
        lines += [_change_line(r) for r in data.get("revisions", [])]
        return _result("\n".join(lines), data)

    @mcp.tool(annotations=READ_ONLY)
    async def get_recent_changes(limit: Limit = 20, by: By = "all") -> ToolResult:
        """List the latest changes across the whole wiki, newest first, with who made each and
        through which agent; `by` keeps only agents' changes or only people's own."""
        slug, auth = caller()
        data = await _api(pages.changes(slug, auth, limit, by))
        lines = ["Recent changes:"] + [
            f"{_change_line(c)}  [{', '.join(c.get('paths', []))}]" for c in data.get("changes", [])
        ]
        return _result("\n".join(lines), data)

    @mcp.tool(annotations=CHANGES)
    async def rename_page(
        path: Path,
        new_path: Annotated[str, Field(description="The page's new path.")],
        update_links: Annotated[
            bool, Field(description="Also rewrite links in other pages that point to it.")
        ] = False,
        message: Message = None,
    ) -> ToolResult:
        """Rename (move) a page, optionally updating the links that point to it."""
        slug, auth = caller()
        data = await _api(pages.rename_page(slug, auth, path, new_path, update_links, message))
        updated = data.get("updated_pages") or []
        text = f"Renamed {data.get('from', path)} to {data['path']} (revision {data['revision']})."
        if updated:
            text += f" Updated links in: {', '.join(updated)}."
        return _result(text, data)

    @mcp.tool(annotations=CHANGES)
    async def delete_page(path: Path, message: Message = None) -> ToolResult:
        """Delete a page (its history stays in git)."""
        slug, auth = caller()
        data = await _api(pages.delete_page(slug, auth, path, message))
        return _result(f"Deleted {data.get('path', path)} (revision {data.get('revision')}).", data)

    @mcp.tool(annotations=READ_ONLY)
    async def get_links(path: Path) -> ToolResult:
        """Show the pages a page links to, and the pages that link to it (backlinks)."""
        slug, auth = caller()
        data = await _api(pages.links(slug, auth, path))
        text = (
            f"{data.get('path', path)} links to: {', '.join(data.get('outgoing', [])) or 'nothing'}"
            f"\nLinked from: {', '.join(data.get('backlinks', [])) or 'nothing'}"
        )
        return _result(text, data)

    @mcp.tool(annotations=READ_ONLY)
    async def find_orphaned_pages() -> ToolResult:
        """List pages that no other page links to."""
        slug, auth = caller()
        data = await _api(pages.orphans(slug, auth))
        found = data.get("pages", [])
        text = f"{len(found)} orphaned page(s)" + (": " + ", ".join(found) if found else ".")
        return _result(text, data)

    @mcp.tool(annotations=READ_ONLY)
    async def list_attachments(path: Path) -> ToolResult:
        """List the files attached to a page: name, size, type and last change."""
        slug, auth = caller()
        data = await _api(pages.attachments(slug, auth, path))
        rows = data.get("attachments", [])
        lines = [f"{len(rows)} attachment(s) on {path}:"] + [
            f"{a['name']}  ({a.get('size')} bytes, {a.get('mime')}, {a.get('last_changed')})"
            for a in rows
        ]
        return _result("\n".join(lines), data)

    @mcp.tool(annotations=READ_ONLY)
    async def read_attachment(
        path: Path,
        name: Annotated[str, Field(description="File name of the attachment.")],
        max_bytes: Annotated[
            int,
            Field(ge=1, le=MAX_ATTACHMENT_BYTES, description="Refuse files larger than this."),
        ] = DEFAULT_ATTACHMENT_BYTES,
        revision: Annotated[
            str | None, Field(description="Read the file as of this revision (optional).")
        ] = None,
    ) -> ToolResult:
        """Read an attachment: text files as text, images as images, other files as base64."""
        slug, auth = caller()
        blob = await _api(pages.attachment(slug, auth, path, name, max_bytes, revision))
        info = {"path": path, "name": name, "mime": blob.content_type, "size": len(blob.data)}
        text = _as_text(blob.data, blob.content_type)
        if text is not None:
            return ToolResult([TextContent(type="text", text=text)], {**info, "encoding": "text"})
        encoded = base64.b64encode(blob.data).decode()
        if blob.content_type in _IMAGE_TYPES:
            block = ImageContent(type="image", data=encoded, mime_type=blob.content_type)
        else:
            uri = pages.settings.wiki_url(slug) + quote(f"{path}/a/{name}")
            resource = BlobResourceContents(uri=uri, mime_type=blob.content_type, blob=encoded)
            block = EmbeddedResource(type="resource", resource=resource)
        return ToolResult([block], {**info, "encoding": "base64"})

    @mcp.tool(annotations=CHANGES)
    async def upload_attachment(
        path: Path,
        name: Annotated[str, Field(description="File name, e.g. 'diagram.png' or 'data.csv'.")],
        content: Annotated[
            str, Field(description="The file: its text, or its bytes in base64 (see encoding).")
        ],
        encoding: Annotated[
            Literal["text", "base64"],
            Field(description="'text' stores content as UTF-8; 'base64' decodes it first."),
        ] = "text",
        message: Message = None,
    ) -> ToolResult:
        """Attach a file to an existing page, or replace the page's file of that name.

        Binary files go as base64. The wiki caps a file's size; one MCP request carries at
        most 8 MiB, so about 6 MiB of base64-encoded file.
        """
        try:
            data = _decoded(content, encoding)
        except ValueError as error:
            raise ToolError(str(error)) from None
        slug, auth = caller()
        done = await _api(pages.upload_attachment(slug, auth, path, name, data, message))
        verb = "Attached" if done.get("created") else "Replaced"
        text = (
            f"{verb} {done['name']} to {done['path']} ({done['size']} bytes, {done['mime']}) "
            f"at revision {done['revision']}."
        )
        return _result(text, done)

    @mcp.tool(annotations=CHANGES)
    async def delete_attachment(
        path: Path,
        name: Annotated[str, Field(description="File name of the attachment.")],
        message: Message = None,
    ) -> ToolResult:
        """Delete a file attached to a page (its history stays in git)."""
        slug, auth = caller()
        done = await _api(pages.delete_attachment(slug, auth, path, name, message))
        return _result(f"Deleted {done['name']} of {done['path']} ({done['revision']}).", done)

    return mcp


def _decoded(content: str, encoding: str) -> bytes:
    """The bytes an upload_attachment call sends; ValueError saying what is wrong with them."""
    if encoding == "base64":
        try:
            return base64.b64decode("".join(content.split()), validate=True)
        except ValueError:  # binascii.Error is a ValueError
            raise ValueError("content is not valid base64 (encoding='base64')") from None
    try:
        return content.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("content is not valid Unicode text (a lone surrogate)") from None


def _as_text(data: bytes, content_type: str) -> str | None:
    textual = (
        content_type.startswith("text/")
        or content_type in _TEXT_TYPES
        or content_type.endswith(("+json", "+xml"))
    )
    if not textual:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
