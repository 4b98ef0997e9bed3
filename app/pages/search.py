"""Questions across all pages of a wiki: full-text search, links and backlinks, orphans."""

from __future__ import annotations

from otterwiki.gitstorage import StorageError

from app.core.errors import BadRequest
from app.core.errors import NotFound
from app.pages.links import outgoing_links
from app.pages.storage import Pages

MAX_QUERY_CHARS = 200
SNIPPETS_PER_PAGE = 3
# Characters of context kept around a match: enough to read a sentence, small enough for agents.
SNIPPET_RADIUS = 80
HOME = "home.md"


def _texts(pages: Pages) -> dict[str, str]:
    """Return the content of every readable page, keyed by file name."""
    texts = {}
    for filename in pages.page_files():
        try:
            texts[filename] = pages.storage.load(filename)
        except StorageError:
            continue  # binary or unreadable: not searchable text
    return texts


def _snippet(line: str, at: int, length: int) -> str:
    start = max(0, at - SNIPPET_RADIUS)
    end = min(len(line), at + length + SNIPPET_RADIUS)
    text = line[start:end].strip()
    return ("…" if start > 0 else "") + text + ("…" if end < len(line) else "")


def search(pages: Pages, query: object, limit: int = 20) -> list[dict]:
    """Find pages whose name or text contains `query` (case-insensitive), best first."""
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("search query q is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise BadRequest(f"search query is longer than {MAX_QUERY_CHARS} characters")
    needle = query.strip().casefold()
    scored = []
    for filename, text in _texts(pages).items():
        path = pages.rules.page_path(filename)
        in_name = needle in path.casefold()
        count, snippets = 0, []
        for line in text.splitlines():
            folded = line.casefold()
            at = folded.find(needle)
            if at < 0:
                continue
            count += folded.count(needle)
            if len(snippets) < SNIPPETS_PER_PAGE:
                # casefold can change lengths (ß -> ss); the offset is only a hint for the window
                snippets.append(_snippet(line, at, len(needle)))
        if in_name or count:
            scored.append((not in_name, -count, path, snippets))
    scored.sort()
    return [{"path": p, "snippets": s, "matches": -c} for _, c, p, s in scored[:limit]]


def _link_map(pages: Pages) -> dict[str, list[str]]:
    """Map each page path to the page paths it links to."""
    return {
        pages.rules.page_path(filename): outgoing_links(
            pages.rules, filename[:-3], text, pages.wikilink_style
        )
        for filename, text in _texts(pages).items()
    }


def links(pages: Pages, path: str) -> dict:
    """Return the pages a page links to (and which of those are missing) and its backlinks."""
    path = pages.rules.clean(path)
    filename = pages.rules.filename(path)
    if not pages.is_page(filename):
        raise NotFound(f"page {path!r} does not exist")
    shown = pages.rules.page_path(filename)
    link_map = _link_map(pages)
    outgoing = link_map.get(shown, [])
    return {
        "path": shown,
        "outgoing": outgoing,
        "missing": [p for p in outgoing if p not in link_map],
        "backlinks": sorted(p for p, out in link_map.items() if shown in out and p != shown),
    }


def orphans(pages: Pages) -> list[str]:
    """Return pages no other page links to (Home is the root, never an orphan)."""
    link_map = _link_map(pages)
    linked = {target for source, out in link_map.items() for target in out if target != source}
    home = pages.rules.page_path(HOME)
    return sorted(p for p in link_map if p not in linked and p != home)
