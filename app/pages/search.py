"""Questions across all pages of a wiki: full-text search, links and backlinks, orphans."""

from __future__ import annotations

import contextlib
from pathlib import Path

from app.core.errors import NotFound
from app.pages.fulltext import SearchIndex
from app.pages.fulltext import results
from app.pages.storage import Pages

HOME = "home.md"


def search(
    pages: Pages, query: object, limit: int, index_path: Path, heavy=contextlib.nullcontext
) -> list[dict]:
    """Find the pages matching `query`, best first, through the wiki's full-text index.

    `query` follows `app.pages.query` (words in any order, "phrases", prefix*, OR, -word);
    `index_path` is the wiki's index file (Settings.search_index_path), built or brought up
    to date with HEAD here. Returns at most `limit` dicts `{path, score, matches, snippets,
    highlights}`: `score` is FTS5's bm25 relevance negated (higher is better; a word in the
    page name weighs ten times one in its text), `matches` the matching words in the name and
    in the first few matching pieces of the text (a bounded count: app.pages.fulltext.Hit),
    `snippets` one plain-text excerpt around the best match (whitespace collapsed, `…`
    where text was cut) and `highlights[i]` the `[start, end)` offsets, in Unicode code
    points, of the matched words in `snippets[i]`. `heavy` is the context a query of words
    the pages repeat very often runs in (SearchIndex.search). Raises BadRequest for an empty,
    too long or wordless query, Unavailable for one past its CPU.
    """
    hits = SearchIndex(index_path, pages.storage.repo).search(query, limit, heavy)
    return results(hits, pages.rules)


def _sources(link_map: dict[str, tuple[str, ...]]) -> list[tuple[tuple[str, ...], list[str]]]:
    """Each distinct list of targets in `link_map` with the pages that hold it: a text pushed
    under many names is one list, looked through once, not once a name."""
    grouped: dict[int, tuple[tuple[str, ...], list[str]]] = {}
    for source, targets in link_map.items():
        grouped.setdefault(id(targets), (targets, []))[1].append(source)
    return list(grouped.values())


def links(pages: Pages, path: str) -> dict:
    """Return the pages a page links to (and which of those are missing: neither a page nor
    a folder of pages) and its backlinks.
    Raises NotFound for a page that does not exist; Unavailable and PayloadTooLarge as
    Pages.links."""
    path = pages.rules.clean(path)
    filename = pages.rules.filename(path)
    if not pages.is_page(filename):
        raise NotFound(f"page {path!r} does not exist")
    shown = pages.rules.page_path(filename)
    link_map = pages.links()
    outgoing = link_map.get(shown, ())
    backlinks = [
        source
        for targets, sources in _sources(link_map)
        if shown in targets
        for source in sources
        if source != shown
    ]
    there = _there(link_map)
    return {
        "path": shown,
        "outgoing": list(outgoing),
        "missing": [p for p in outgoing if p not in there],
        "backlinks": sorted(backlinks),
    }


def orphans(pages: Pages) -> list[str]:
    """Return pages no other page links to (Home is the root, never an orphan); raises as
    Pages.links."""
    link_map = pages.links()
    linked: set[str] = set()
    for targets, sources in _sources(link_map):
        if len(sources) > 1:
            linked.update(targets)  # each target has a source other than itself
        else:
            linked.update(t for t in targets if t != sources[0])
    home = pages.rules.page_path(HOME)
    return sorted(p for p in link_map if p not in linked and p != home)


def broken_links(pages: Pages) -> dict[str, tuple[str, ...]]:
    """Map each page that links to pages that do not exist to those targets ({page path:
    (target page path, ...)}, in the order the page links to them): a target is there if it
    is a page, or a folder holding pages (Otterwiki shows such a folder's index). Raises as
    Pages.links."""
    link_map = pages.links()
    there = _there(link_map)
    broken = {}
    for targets, sources in _sources(link_map):
        missing = tuple(target for target in targets if target not in there)
        if missing:
            broken.update((source, missing) for source in sources)
    return broken


def _there(link_map: dict[str, tuple[str, ...]]) -> set[str]:
    """The page paths a link may name and find: every page, and every folder holding pages
    (Otterwiki shows such a folder's index, so a link to it is not broken)."""
    there = set(link_map)
    for path in link_map:
        parts = path.split("/")
        there.update("/".join(parts[:n]) for n in range(1, len(parts)))
    return there
