"""Otterwiki's search page (`/-/search`) answered from the wiki's full-text index.

The same index and query syntax as the page API and MCP (app.pages.fulltext, app.pages.query),
ranked by relevance, in Otterwiki's own template so the page keeps its look. Matches come as
`<mark class="text-match">` (Otterwiki's highlight class) around escaped text, in page names as
Otterwiki's `<span class="page-match">`: page text never reaches the page as HTML. "Regular
expression" and "Match case", which the index cannot answer, are Otterwiki's scan through every
page, kept in its result shape but bounded (`bounded_scan`); permissions are Otterwiki's (its
`render` answers the refusal).

Otterwiki gave each regular-expression call 5 s: a pattern that backtracks, over a page of
many lines, ran for minutes, and its first timeout was a 500 (it catches
`regex.TimeoutError`, a name the regex package does not have). Timeouts alone do not bound the
regex package: recursion and repeated captures took a worker past 1 GB, compiling nested
repeats 275 MB, long literal runs 59 s unchecked (twenty-seventh to thirtieth reviews), and
refusing such patterns shape by shape left the next shape open. So the whole scan, compile
included, runs in a forked child the worker waits REGEX_SCAN_SECONDS for and whose added
memory is capped (app.core.confined); the page shows what it found by then, with a notice.
What is shown of each page is bounded too.
"""

from __future__ import annotations

import itertools
from types import ModuleType

from markupsafe import Markup
from markupsafe import escape

from app.core.confined import Ending
from app.core.confined import run_confined
from app.core.errors import BadRequest
from app.pages.fulltext import Marked
from app.pages.fulltext import SearchIndex
from app.pages.fulltext import pieces
from app.wiki.heavy import heavy_search
from app.wiki.heavy import heavy_step

SEARCH_ENDPOINT = "search"
# Wall-clock seconds a worker waits for one regular-expression or case-sensitive scan.
REGEX_SCAN_SECONDS = 2.0
# The most memory the scan may add to the worker's, in bytes: a page's text and its lines
# take a few times its size; a pattern wanting more (recursion, repeated captures over a long
# line, a bounded repeat the regex package compiles out) ends the scan with a notice.
REGEX_SCAN_MEMORY_BYTES = 256 * 2**20
# Scans run in one of the host's slots for heavy steps, in a fair order (app.wiki.heavy).
SCAN_KIND = "regex-scan"
# Otterwiki's page lists every match; a bound keeps one query's page a readable size.
MAX_RESULTS = 200
# The scan's excerpts: characters of a matched line shown, of them before its first match,
# lines shown for a page, and matches counted in one line. Otterwiki showed every matched
# line whole: one query sent 75 MB over one-line pages of 1 MB (twenty-fourth review).
EXCERPT_CHARS = 240
EXCERPT_LEAD = 60
EXCERPT_LINES = 5
MAX_COUNTED = 1000


def marked_html(marked: Marked, css_class: str, tag: str = "mark") -> Markup:
    """Return `marked`'s text escaped, each match in `<{tag} class="{css_class}">`."""
    wrap = Markup(f'<{tag} class="{{}}">{{}}</{tag}>')
    return Markup("").join(
        wrap.format(css_class, piece) if match else escape(piece)
        for piece, match in pieces(marked.text, marked.spans)
    )


def _hit_key(hit, get_pagename) -> tuple:
    """Otterwiki's result key: (name matched, matches, file, page name, name as HTML)."""
    pagename = get_pagename(hit.filename, full=True)
    shown = hit.name if len(hit.name.text) == len(pagename) else Marked(hit.name.text, ())
    # the display name differs from the file name in case only: the offsets still fit it
    # a span, as Otterwiki's own: its stylesheet styles `a span.page-match`
    name_html = marked_html(Marked(pagename, shown.spans), "page-match", tag="span")
    return (1 if hit.name.spans else 0, hit.matches, hit.filename, pagename, str(name_html))


def _bounded_regex_scan(search_class) -> None:
    """Make Otterwiki's `Search` scan run apart and bounded (module docstring): its `compile`
    only notes the pattern, its `search` is `bounded_scan`."""

    from otterwiki.util import empty

    def compile(self):
        self.needle = None if empty(self.query) else _needle(self)

    search_class.compile = compile
    search_class.search = bounded_scan


def _needle(search) -> str:
    """The pattern Otterwiki's scan looks for: the query as a regular expression or as text,
    in a group (so `\\1` names that group, as in Otterwiki)."""
    import regex

    return "(" + (search.query if search.is_regexp else regex.escape(search.query)) + ")"


def bounded_scan(search) -> dict:
    """Otterwiki's regular-expression and match-case scan (`Search.search`, whose result
    shape it keeps: {(name matched 0/1, matches, file, page name, name as HTML): [None if
    the name matched, summary HTML]}), run in a confined child (app.core.confined): the worker
    waits REGEX_SCAN_SECONDS at most and the child may add REGEX_SCAN_MEMORY_BYTES; past
    either, the pages found so far are shown with Otterwiki's "timed out" notice or a memory
    one. A line shows EXCERPT_CHARS around its first match and a page EXCERPT_LINES lines;
    each line counts at most MAX_COUNTED matches; the best MAX_RESULTS pages are answered.
    Matches are `<mark class="text-match">` around escaped text, as in the indexed search.
    A pattern the regex package cannot compile is Otterwiki's "Error in search term" notice.
    It runs in one of the host's slots for heavy steps (app.wiki.heavy: TooManyRequests, 429
    with Retry-After, when none is free or another pool goes first).

    `search` is Otterwiki's `Search` after `compile`.
    """
    from otterwiki.helper import toast

    if search.needle is None:
        return {}
    best: list = []
    problems: list[str] = []

    def collect(record) -> None:
        if isinstance(record, str):
            problems.append(record)
            return
        best.append(record)
        if len(best) >= 2 * MAX_RESULTS:
            best.sort(key=_rank)
            del best[MAX_RESULTS:]

    with heavy_step(
        SCAN_KIND, "regular-expression or match-case search", ", or search without those options"
    ):
        ending = run_confined(
            lambda: _scan(search.needle, search.is_casesensitive),
            collect,
            REGEX_SCAN_SECONDS,
            REGEX_SCAN_MEMORY_BYTES,
        )
    if problems:
        toast(f"Error in search term: {problems[0]}", "error")
    elif ending is Ending.OUT_OF_MEMORY:
        toast("The search needed too much memory. Results may be incomplete.", "warning")
    elif ending is not Ending.FINISHED:
        toast("Search regex timed out. Results may be incomplete.", "warning")
    best.sort(key=_rank)
    return {tuple(key): summary for key, summary in best[:MAX_RESULTS]}


def _rank(found: tuple) -> tuple:
    """Otterwiki's order of results: name matches first, then by matches, then by file."""
    key = found[0]
    return (-key[0], -key[1], key[2])


def _scan(needle: str, case_sensitive: bool):
    """Yield, for each page whose name or text `needle` matches, ([name matched 0/1, matches,
    file, page name, name as HTML], [None if the name matched, summary HTML]); first, and
    instead, the regex package's message (a str) if `needle` does not compile. Runs in the
    confined child: it reads the page files and nothing else of the worker's."""
    import regex
    from otterwiki.gitstorage import StorageError
    from otterwiki.helper import get_pagename
    from otterwiki.wiki import storage

    try:
        in_text = regex.compile(needle, 0 if case_sensitive else regex.IGNORECASE)
        in_names = regex.compile(needle, regex.IGNORECASE)
    except (regex.error, ValueError, OverflowError, RecursionError, IndexError) as error:
        yield str(error)
        return
    for filename in (name for name in storage.list()[0] if name.endswith(".md")):
        pagename = get_pagename(filename, full=True)
        in_name = _matches(in_names, get_pagename(filename)) and _matches(in_names, pagename)
        try:
            text = storage.load(filename)
        except StorageError:
            continue
        count, excerpts = 0, []
        for line in text.splitlines():
            in_line = _matches(in_text, line)
            count += len(in_line)
            if in_line and len(excerpts) <= EXCERPT_LINES:
                excerpts.append(_excerpt(line, in_line))
        if not (in_name or count):
            continue
        summary = " [..] ".join(str(excerpt) for excerpt in excerpts[:EXCERPT_LINES])
        if len(excerpts) > EXCERPT_LINES:
            summary += " [..]"
        spans = tuple(match.span() for match in in_name)
        name_html = marked_html(Marked(pagename, spans), "page-match", tag="span")
        key = [1 if in_name else 0, len(in_name) + count, filename, pagename, str(name_html)]
        yield (key, [None, summary] if in_name else [summary])


def _matches(pattern, text: str) -> list:
    """The first MAX_COUNTED non-overlapping matches of `pattern` in `text`, as `finditer`
    finds them."""
    return list(itertools.islice(pattern.finditer(text), MAX_COUNTED))


def _excerpt(line: str, found: list) -> Markup:
    """EXCERPT_CHARS of `line` from a little before its first match in `found` (the line's
    matches, in order), escaped, the matches in it marked; "…" where the line goes on."""
    start = max(0, found[0].start() - EXCERPT_LEAD)
    end = min(len(line), start + EXCERPT_CHARS)
    spans = tuple(
        (match.start() - start, match.end() - start)
        for match in found
        if match.start() >= start and match.end() <= end
    )
    shown = marked_html(Marked(line[start:end], spans), "text-match")
    return Markup("").join(("…" if start else "", shown, "…" if end < len(line) else ""))


def install_indexed_search(server: ModuleType) -> None:
    """Answer `/-/search` from the index unless a regular expression or case is asked for.

    `server` is the booted `otterwiki.server`. Installing again changes nothing.
    """
    import otterwiki.wiki
    from flask import g
    from flask import render_template
    from flask import request
    from otterwiki.auth import has_permission
    from otterwiki.helper import get_pagename
    from otterwiki.helper import toast

    app = server.app
    original_view = app.view_functions[SEARCH_ENDPOINT]
    if getattr(original_view, "robot_indexed", False):
        return
    _bounded_regex_scan(otterwiki.wiki.Search)

    class IndexedSearch(otterwiki.wiki.Search):
        def render(self):
            if not has_permission("READ"):
                return super().render()  # Otterwiki's login redirect or 403
            tenant = g.tenant
            index = SearchIndex(tenant.settings.search_index_path(tenant.slug), tenant.storage.repo)
            try:
                hits = index.search(self.query, MAX_RESULTS, heavy_search)
            except BadRequest as error:
                toast(error.message, "error")
                hits = []
            result = {
                _hit_key(hit, get_pagename): [str(marked_html(hit.snippet, "text-match"))]
                for hit in hits
            }
            return render_template(
                "search.html",
                title=f"Search '{self.query}'",
                query=self.query,
                is_regexp=False,
                is_casesensitive=False,
                keys=list(result),  # in the index's order: most relevant first
                result=result,
            )

    def search(query=None):
        if query is None:
            query = request.form.get("query")
        regexp = request.form.get("is_regexp") == "y"
        case = request.form.get("is_casesensitive") == "y"
        if regexp or case or not (query or "").strip():
            return original_view(query)
        return IndexedSearch(query=query).render()

    search.robot_indexed = True
    app.view_functions[SEARCH_ENDPOINT] = search
