"""Each wiki's MCP server introduces itself: its name, robot's version, and how to use it well.

One FastMCP server serves every wiki, so its handshake answer is made per request here. An
`initialize` result (revisions up to 2025-11-25) carries `serverInfo` and `instructions`; a
`server/discover` result (2026-07-28) carries `instructions` and the `serverInfo` stamp in its
`_meta` (key `io.modelcontextprotocol/serverInfo`). Both take the wiki the request's Host named,
which the auth layer put in the request's state.
"""

from __future__ import annotations

import json

from fastmcp.server.middleware import Middleware
from mcp.types import SERVER_INFO_META_KEY
from mcp.types import Implementation

from app.core.labels import shown_label
from app.core.settings import Settings
from app.core.store import Wiki
from app.core.version import VERSION
from app.mcp.context import current_wiki
from app.mcp.page_client import PageClient

# Clients show the name in lists and menus; the platform caps display names at this too.
MAX_NAME = 100


def server_name(wiki: Wiki) -> str:
    """Return the name wiki `wiki`'s MCP server gives: its display name on one plain line.

    Control and invisible formatting characters are dropped and the length capped at MAX_NAME,
    whatever the stored name holds; the slug stands in for a name that is left empty.
    """
    return shown_label(wiki.display_name or "", MAX_NAME) or wiki.slug


def server_info(settings: Settings, wiki: Wiki) -> Implementation:
    """Return the MCP `Implementation` of wiki `wiki`: its name, robot's version, its URL."""
    return Implementation(
        name=server_name(wiki), version=VERSION, website_url=settings.wiki_url(wiki.slug)
    )


def instructions(settings: Settings, wiki: Wiki) -> str:
    """Return the `instructions` of wiki `wiki`'s MCP server: what the wiki is, how to work in it.

    The display name appears only as a JSON string literal, so whatever it says reads as a name
    and cannot pass for instructions of its own.
    """
    access = (
        "public: anyone may read it; signing in is needed to write"
        if wiki.is_public
        else "private: only its members may read it"
    )
    name = json.dumps(server_name(wiki), ensure_ascii=False)
    return (
        f"This is the wiki named {name} (slug {wiki.slug}, {settings.wiki_url(wiki.slug)}), "
        f"a git-backed Otterwiki; it is {access}. Pages are Markdown addressed by path (e.g. "
        "'Home', 'Projects/Robot'); you act with your own role here (whoami tells it).\n"
        "- Read before you write: read_page gives a page's text and revision; pass that "
        "revision as base_revision to write_page or edit_page, so a change made meanwhile "
        "is merged with yours, or, where the two overlap, comes back as a conflict with the "
        "diff instead of a lost edit.\n"
        "- Make small changes with edit_page (one exact span) or append_to_page rather than "
        "rewriting a whole page with write_page.\n"
        "- Find pages with list_pages and search_pages (its description gives the query syntax); "
        "get_history and get_recent_changes show who changed what.\n"
        "- Files attached to a page: list_attachments, read_attachment, upload_attachment, "
        "delete_attachment.\n"
        f"- Pages are also resources: wiki://{wiki.slug}/<path>."
    )


class WikiIdentity(Middleware):
    """FastMCP middleware: answer `initialize` and `server/discover` as the request's wiki."""

    def __init__(self, pages: PageClient):
        # Its settings give the wikis' URLs; read per request, as build_server(pages=None)
        # (a server only listed, never served) has none.
        self.pages = pages

    @property
    def settings(self) -> Settings:
        return self.pages.settings

    async def on_initialize(self, context, call_next):
        """Return the SDK's `initialize` result with this wiki's serverInfo and instructions."""
        result = await call_next(context)
        wiki = current_wiki()
        if result is None or wiki is None:
            return result
        update = {
            "server_info": server_info(self.settings, wiki),
            "instructions": instructions(self.settings, wiki),
        }
        return result.model_copy(update=update)

    async def on_discover(self, context, call_next):
        """Return the `server/discover` result with this wiki's instructions and info stamp."""
        result = await call_next(context)
        wiki = current_wiki()
        if wiki is None or isinstance(result, dict):  # a dict: an extension's result, not ours
            return result
        stamp = server_info(self.settings, wiki).model_dump(
            by_alias=True, mode="json", exclude_none=True
        )
        update = {
            "instructions": instructions(self.settings, wiki),
            "meta": {**(result.meta or {}), SERVER_INFO_META_KEY: stamp},
        }
        return result.model_copy(update=update)
