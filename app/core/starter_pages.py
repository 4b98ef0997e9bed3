"""The pages a new wiki starts with: Home, and a guide that tells agents how to work in it."""

from __future__ import annotations

# Otterwiki stores a page as its lower-cased name plus .md (OTTERWIKI_FACTS.md); both pages are
# plain Markdown with Otterwiki's [[WikiLinks]].
HOME_FILE = "home.md"
GUIDE_PAGE = "Agent Guide"
GUIDE_FILE = "agent guide.md"

# The MCP tools by their real names (app/mcp/tools.py), in the order an agent meets them; a
# test checks this list against the server's tools.
MCP_TOOLS = (
    ("whoami", "who you are in this wiki: your handle, your role and what you may do"),
    ("list_pages", "every page with its size and when it last changed"),
    ("read_page", "a page's Markdown (optionally an older revision, or one section)"),
    ("search_pages", 'full-text search: all words in any order, "phrases", prefix*, OR, -word'),
    ("write_page", "create a page or replace its whole content"),
    ("edit_page", "replace one exact span of a page, leaving the rest untouched"),
    ("append_to_page", "add a paragraph at the end of a page (creating it if needed)"),
    ("rename_page", "move a page, optionally updating the links to it"),
    ("delete_page", "delete a page (its history stays)"),
    ("get_history", "a page's revisions, newest first"),
    ("get_recent_changes", "the latest changes across the wiki, by people or by agents"),
    ("get_links", "the pages a page links to, and its backlinks"),
    ("find_orphaned_pages", "pages no other page links to"),
    ("list_attachments", "the files attached to a page"),
    ("read_attachment", "one attached file (text, image or base64)"),
    ("upload_attachment", "attach a file to a page (text or base64), or replace one"),
    ("delete_attachment", "remove a file attached to a page"),
)


def home_page(display_name: str) -> str:
    """Return the Markdown of a new wiki's Home page."""
    return f"""# {display_name}

Welcome to your wiki: a set of pages that people with access read and, as editors, change.
Every change is kept, so nothing written here is ever lost.

## Editing

- Press **Edit** on any page to change it; pages are written in Markdown.
- Link to another page with `[[Page Name]]`; following a link to a page that does not exist yet
  lets you create it.
- **History** on each page shows every earlier version and who made it.

## Agents

AI agents (Claude, ChatGPT, or any MCP client) can read and edit this wiki too.
[[{GUIDE_PAGE}]] says how to connect one and what it can do.
"""


def agent_guide(mcp_url: str) -> str:
    """Return the Markdown of a new wiki's guide for agents, naming its MCP endpoint."""
    tools = "\n".join(f"- `{name}`: {what}" for name, what in MCP_TOOLS)
    return f"""# {GUIDE_PAGE}

This wiki speaks MCP (the Model Context Protocol), so an agent can read and write its pages.

## Connecting

The wiki's MCP endpoint is:

    {mcp_url}

- **Claude, ChatGPT and other OAuth-capable clients**: add this URL as a custom connector or
  MCP server; the client asks you to sign in and to approve its access to this wiki.
- **Clients without OAuth**: create a wiki token in the wiki's settings and send it as
  `Authorization: Bearer <token>`. A token acts with its own role (viewer, editor or admin),
  never more than yours.

## Tools

{tools}

## Working well here

- Call `whoami` first, then `list_pages` or `search_pages` before writing, so new pages fit
  the ones already here.
- Prefer `edit_page` and `append_to_page` for small changes, and pass the revision you read as
  `base_revision`: someone else's edit made since is merged with yours, and if the two touch the
  same lines nothing is written; you get the diff to resolve and retry on the new revision.
- Link related pages with `[[Page Name]]`, and say what changed in each edit's message: the
  wiki's history shows each change as yours, made through this agent.
- Keep [[Home]] as the way in: link new top-level pages from it.
"""


def starter_files(display_name: str, mcp_url: str) -> dict[str, str]:
    """Return the starter pages of a new wiki as {repository file name: Markdown}."""
    return {HOME_FILE: home_page(display_name), GUIDE_FILE: agent_guide(mcp_url)}
