"""Otterwiki's search page (`/-/search`) answered from the wiki's full-text index.

The same index and query syntax as the page API and MCP (app.pages.fulltext, app.pages.query),
ranked by relevance, in Otterwiki's own template so the page keeps its look. Matches come as
`<mark class="text-match">` (Otterwiki's highlight class) around escaped text, in page names as
Otterwiki's `<span class="page-match">`: page text never reaches the page as HTML. "Regular
expression" and "Match case" stay Otterwiki's own scan, which the index cannot answer;
permissions are Otterwiki's (its `render` answers the refusal).

That scan gives each regular-expression call 5 s: a pattern that backtracks, over a page of
many lines, ran for minutes, and its first timeout was a 500, as Otterwiki catches
`regex.TimeoutError`, a name the regex package does not have (it raises the builtin
TimeoutError). Here the whole scan shares REGEX_SCAN_SECONDS; once spent, every further call
times out at once, no further page is read (the scan went on loading and splitting every page:
8 s for a 16 MB wiki, a worker killed at 80 MB; twenty-third review), and Otterwiki shows what
it found with its "timed out" notice.
"""

from __future__ import annotations

import time
from types import ModuleType

from markupsafe import Markup
from markupsafe import escape

from app.core.errors import BadRequest
from app.pages.fulltext import Marked
from app.pages.fulltext import SearchIndex
from app.pages.fulltext import pieces

SEARCH_ENDPOINT = "search"
# Wall-clock seconds one regular-expression or case-sensitive search may spend matching.
REGEX_SCAN_SECONDS = 2.0
# Otterwiki's page lists every match; a bound keeps one query's page a readable size.
MAX_RESULTS = 200


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


class DeadlinePattern:
    """A compiled `regex` pattern whose search, findall and sub share one deadline: each call
    gets the time left (as the regex package's `timeout`, seconds); past the deadline the first
    call raises TimeoutError and the rest match nothing, at once. Anything else is the
    pattern's own."""

    def __init__(self, pattern, deadline: float):
        self._pattern = pattern
        self._deadline = deadline  # time.monotonic() seconds

        self._told = False  # whether the scan was told (once) that its time is spent

    def __getattr__(self, name):
        return getattr(self._pattern, name)

    def spent(self) -> bool:
        """Whether the deadline has passed."""
        return time.monotonic() >= self._deadline

    def _left(self, timeout: float | None) -> float | None:
        """Seconds the next call may match (None: none, answer no match); raises TimeoutError
        the first time the deadline has passed, so Otterwiki shows its "timed out" notice."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            if self._told:
                return None
            self._told = True
            raise TimeoutError("regular expression search time is spent")
        return left if timeout is None else min(timeout, left)

    # Past the deadline, no match at once: Otterwiki logged a warning for every line of every
    # page after it (37 MB of log in a minute), and matched nothing more anyway.
    def search(self, *args, timeout: float | None = None, **kwargs):
        left = self._left(timeout)
        return None if left is None else self._pattern.search(*args, timeout=left, **kwargs)

    def findall(self, *args, timeout: float | None = None, **kwargs):
        left = self._left(timeout)
        return [] if left is None else self._pattern.findall(*args, timeout=left, **kwargs)

    def sub(self, repl, string, *args, timeout: float | None = None, **kwargs):
        left = self._left(timeout)
        if left is None:
            return string
        return self._pattern.sub(repl, string, *args, timeout=left, **kwargs)


def _bounded_regex_scan(search_class) -> None:
    """Give Otterwiki's `Search` scan one REGEX_SCAN_SECONDS deadline (module docstring)."""
    import regex

    if not hasattr(regex, "TimeoutError"):
        # The name Otterwiki 2.26.1 catches; regex raises the builtin (regex 2026.2.28).
        regex.TimeoutError = TimeoutError
    original = search_class.compile

    def compile(self):
        original(self)
        deadline = time.monotonic() + REGEX_SCAN_SECONDS
        for name in ("re", "rei"):
            if getattr(self, name, None) is not None:
                setattr(self, name, DeadlinePattern(getattr(self, name), deadline))

    search_class.compile = compile
    original_search = search_class.search

    def search(self):
        pattern = self.re
        if not isinstance(pattern, DeadlinePattern):
            return original_search(self)
        return _reading_until(pattern, lambda: original_search(self))

    search_class.search = search


def _reading_until(pattern: DeadlinePattern, scan):
    """Run `scan()` (Otterwiki's Search.search) with the storage's `load` answering "" once
    `pattern`'s deadline has passed, so the scan runs through the rest of the page list
    without reading a page. Put back after: one request runs at a time in a worker."""
    from otterwiki.wiki import storage

    own = vars(storage)
    had, before = "load" in own, own.get("load")
    load = storage.load

    def bounded_load(filename, *args, **kwargs):
        return "" if pattern.spent() else load(filename, *args, **kwargs)

    storage.load = bounded_load
    try:
        return scan()
    finally:
        if had:
            storage.load = before
        else:
            del storage.load


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
                hits = index.search(self.query, MAX_RESULTS)
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
