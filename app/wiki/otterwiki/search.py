"""Otterwiki's search page (`/-/search`) answered from the wiki's full-text index.

The same index and query syntax as the page API and MCP (app.pages.fulltext, app.pages.query),
ranked by relevance, in Otterwiki's own template so the page keeps its look. Matches come as
`<mark class="text-match">` (Otterwiki's highlight class) around escaped text, in page names as
Otterwiki's `<span class="page-match">`: page text never reaches the page as HTML. "Regular
expression" and "Match case", which the index cannot answer, are Otterwiki's scan through every
page, kept in its result shape but bounded (`bounded_scan`); permissions are Otterwiki's (its
`render` answers the refusal).

Otterwiki gave each regular-expression call 5 s: a pattern that backtracks, over a page of
many lines, ran for minutes, and its first timeout was a 500, as Otterwiki catches
`regex.TimeoutError`, a name the regex package does not have (it raises the builtin
TimeoutError). Here the whole scan shares REGEX_SCAN_SECONDS; once spent, every further call
times out at once, no further page is read (the scan went on loading and splitting every page:
8 s for a 16 MB wiki, a worker killed at 80 MB; twenty-third review), and the page shows what
was found with Otterwiki's "timed out" notice. What is shown of each page is bounded too.
"""

from __future__ import annotations

import re
import time
import warnings
from re import _constants
from re import _parser
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


class DeadlinePattern:
    """A compiled `regex` pattern whose searches share one deadline: each call gets the time
    left (as the regex package's `timeout`, seconds); past the deadline the first call raises
    TimeoutError and the rest match nothing, at once. Anything else is the pattern's own."""

    def __init__(self, pattern, deadline: float):
        self._pattern = pattern
        self._deadline = deadline  # time.monotonic() seconds
        self._told = False  # whether the scan was told (once) that its time is spent

    def __getattr__(self, name):
        return getattr(self._pattern, name)

    def give_up(self) -> None:
        """End the scan now: the deadline has passed, and the scan was told."""
        self._deadline = 0.0
        self._told = True

    def spent(self) -> bool:
        """Whether the deadline has passed."""
        return time.monotonic() >= self._deadline

    def _left(self, timeout: float | None) -> float | None:
        """Seconds the next call may match (None: none, answer no match); raises TimeoutError
        the first time the deadline has passed, so the scan shows its "timed out" notice."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            if self._told:
                return None
            self._told = True
            raise TimeoutError("regular expression search time is spent")
        return left if timeout is None else min(timeout, left)

    # Past the deadline, no match at once: Otterwiki logged a warning for every line of every
    # page after it (37 MB of log in a minute), and matched nothing more anyway.
    def search(self, string: str, pos: int = 0, timeout: float | None = None):
        """The pattern's first match in `string` from `pos`, or None."""
        left = self._left(timeout)
        return None if left is None else self._pattern.search(string, pos, timeout=left)

    def matches(self, string: str, limit: int) -> list:
        """The first `limit` non-overlapping matches in `string`, as `finditer` finds them,
        each search given the time left (a lazy `finditer` times each step on its own)."""
        found: list = []
        at = 0
        while len(found) < limit and at <= len(string):
            match = self.search(string, at)
            if match is None:
                break
            found.append(match)
            at = match.end() if match.end() > match.start() else match.end() + 1
        return found


# The most a pattern may weigh (_weight): the regex package compiles a bounded repeat into as
# many copies of what it repeats, and `(?:a{1000}){1000}` took 275 MB and 0.5 s to compile,
# before any time budget; three such repeats deep, a worker was killed (twenty-eighth review).
# 50,000 compiles in milliseconds and a few megabytes.
MAX_PATTERN_WEIGHT = 50_000
# Characters a pattern may match in a row (_literals), and the most times a repeat holding a
# capturing group may go (_captures_in_repeat: `(\d{1,3}\.){3}` is fine, `(.)*` is not).
MAX_LITERALS = 256
MAX_REPEATED_CAPTURES = 100
_REPEATS = (_constants.MAX_REPEAT, _constants.MIN_REPEAT, _constants.POSSESSIVE_REPEAT)


def regex_problem(query: object) -> str | None:
    """What is wrong with a search's regular expression, or None.

    It must be one Python's own `re` parses, with no brace `re` reads as itself, no
    capturing group inside a repeat, and no more than MAX_PATTERN_WEIGHT items once its
    repeats are counted out. The scan matches with
    the `regex` package, whose recursion and subroutine calls (`(?R)`, `(?1)`, `(?&name)`)
    took a worker past 1 GB and a MemoryError (a 500) in one anonymous search (twenty-seventh
    review); `re` has none. Where `re` reads a brace as itself, `regex` may read a fuzzy
    constraint (`{e<=2}`, hidden between comments or in verbose mode): `re`'s own parse says
    where its literals are, comments and escapes read as `re` reads them.
    """
    if not isinstance(query, str) or not query.strip():
        return None  # nothing to search: Otterwiki's own empty result
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # re's FutureWarnings on sets: not the user's log
            # as Otterwiki compiles it: in a group, so `\1` names that group, still open
            parsed = _parser.parse(f"({query})")
            if _is_verbose(query, parsed):
                problem = "verbose mode (its comments are read apart by re and regex)"
            elif _literals(parsed) > MAX_LITERALS:
                problem = f"more than {MAX_LITERALS} characters to match in a row"
            elif _has_literal_brace(parsed):
                problem = "a brace that is no repeat count (to find braces, write [{}])"
            elif _captures_in_repeat(parsed):
                problem = "a capturing group inside an unbounded repeat (write (?:...) instead)"
            elif _weight(parsed) > MAX_PATTERN_WEIGHT:
                problem = f"its repeats count out to more than {MAX_PATTERN_WEIGHT} items"
            else:
                return None
    except (re.error, RecursionError, OverflowError, ValueError) as error:
        problem = str(error)
    return (
        f"Error in search term: {problem}. The search takes Python's regular expressions "
        "(no recursion, subroutine calls or fuzzy matching)."
    )


def _children(op, av) -> list:
    """The sub-patterns of one parsed item of `re`'s parser (sre_parse's shapes)."""
    if op in _REPEATS:
        return [av[2]]
    if op is _constants.SUBPATTERN:
        return [av[3]]
    if op is _constants.BRANCH:
        return list(av[1])
    if op in (_constants.ASSERT, _constants.ASSERT_NOT):
        return [av[1]]
    if op is _constants.ATOMIC_GROUP:
        return [av]
    if op is _constants.GROUPREF_EXISTS:
        return [sub for sub in av[1:] if sub is not None]
    return []


def _is_verbose(query: str, parsed) -> bool:
    """Whether the pattern turns on verbose mode anywhere, or escapes a line break: in a
    verbose comment `re` reads `\\` and a newline as one escape and the comment as going
    on, where `regex` ends it, so `(?x)#\\` hid recursion and fuzzy matching from `re`'s
    parse (thirtieth review). A one-line search needs neither."""
    if parsed.state.flags & _constants.SRE_FLAG_VERBOSE or re.search(
        r"\\[\r\n\x0b\x0c\x85\u2028\u2029]", query
    ):
        return True

    def scoped(items) -> bool:
        return any(
            (op is _constants.SUBPATTERN and av[1] & _constants.SRE_FLAG_VERBOSE)
            or any(scoped(sub) for sub in _children(op, av))
            for op, av in items
        )

    return scoped(parsed)


def _literals(items) -> int:
    """Characters and classes matched one after another outside repeats: the regex package
    compares such a run at every position without looking at its timeout, and 5,000 `a`s
    then `\\d` ran 59 s over a 200 KB line (thirtieth review); 256 take a fraction of one."""
    count = 0
    for op, av in items:
        if op in (_constants.LITERAL, _constants.NOT_LITERAL, _constants.IN, _constants.ANY):
            count += 1
        elif op not in _REPEATS:
            count += sum(_literals(sub) for sub in _children(op, av))
    return count


def _captures_in_repeat(items, repeated: bool = False) -> bool:
    """Whether a capturing group sits inside a repeat of more than MAX_REPEATED_CAPTURES
    (unbounded included): the regex package keeps every capture
    a repeated group makes, and nested ones multiply them (one search of
    `(?:((((((((((a))))))))))|(b))*\\d` over a 1 MB line took a worker to 900 MB and 4 s past
    its budget: twenty-ninth review); `(?:...)` costs nothing of the kind."""
    for op, av in items:
        if repeated and op is _constants.SUBPATTERN and av[0] is not None:
            return True
        inner = repeated or (op in _REPEATS and av[1] > MAX_REPEATED_CAPTURES)
        if any(_captures_in_repeat(sub, inner) for sub in _children(op, av)):
            return True
    return False


def _has_literal_brace(items) -> bool:
    return any(
        (op is _constants.LITERAL and av == ord("{"))
        or any(_has_literal_brace(sub) for sub in _children(op, av))
        for op, av in items
    )


def _weight(items) -> int:
    """Items of a parsed pattern, each counted as many times as the bounded repeats around
    it make (an unbounded one by its least); stops counting once past MAX_PATTERN_WEIGHT."""
    total = 0
    for op, av in items:
        inner = sum(_weight(sub) for sub in _children(op, av)) or 1
        if op in _REPEATS:
            low, high, _ = av
            inner *= max(low if high == _constants.MAXREPEAT else high, 1)
        total += inner
        if total > MAX_PATTERN_WEIGHT:
            break
    return total


def _bounded_regex_scan(search_class) -> None:
    """Give Otterwiki's `Search` scan one REGEX_SCAN_SECONDS deadline and a bounded answer
    (module docstring): its `compile` wraps the patterns, its `search` is `bounded_scan`."""
    import regex

    if not hasattr(regex, "TimeoutError"):
        # The name Otterwiki 2.26.1 catches; regex raises the builtin (regex 2026.2.28).
        regex.TimeoutError = TimeoutError
    original = search_class.compile

    def compile(self):
        from otterwiki.helper import toast

        if self.is_regexp and (problem := regex_problem(self.query)):
            toast(problem, "error")
            return  # no pattern: no results, as for Otterwiki's own pattern errors
        try:
            original(self)
        except MemoryError:
            regex.purge()
            self.re = None  # as a pattern error: no results, and the notice
            toast("Error in search term: the pattern needs too much memory.", "error")
            return
        deadline = time.monotonic() + REGEX_SCAN_SECONDS
        for name in ("re", "rei"):
            if getattr(self, name, None) is not None:
                setattr(self, name, DeadlinePattern(getattr(self, name), deadline))

    search_class.compile = compile
    search_class.search = bounded_scan


def bounded_scan(search) -> dict:
    """Otterwiki's regular-expression and match-case scan (`Search.search`, whose result
    shape it keeps: {(name matched 0/1, matches, file, page name, name as HTML): [None if
    the name matched, summary HTML]}), bounded: once the deadline has passed no page is read;
    a line shows EXCERPT_CHARS around its first match and a page EXCERPT_LINES lines; each
    line counts at most MAX_COUNTED matches; the best MAX_RESULTS pages are answered.
    Matches are `<mark class="text-match">` around escaped text, as in the indexed search.

    `search` is Otterwiki's `Search` after `compile`, its patterns `DeadlinePattern`s.
    """
    from otterwiki.gitstorage import StorageError
    from otterwiki.helper import get_pagename
    from otterwiki.helper import toast
    from otterwiki.wiki import storage

    if search.re is None:
        return {}
    timed_out = False

    def matches(pattern: DeadlinePattern, text: str) -> list:
        nonlocal timed_out
        try:
            return pattern.matches(text, MAX_COUNTED)
        except (TimeoutError, MemoryError):
            # A pattern that outgrows memory (what `re` accepts should not) ends the scan
            # as one out of time does: what was found, with the notice.
            timed_out = True
            search.re.give_up()
            search.rei.give_up()
            return []

    found = []
    for filename in (name for name in storage.list()[0] if name.endswith(".md")):
        pagename = get_pagename(filename, full=True)
        in_name = matches(search.rei, get_pagename(filename)) and matches(search.rei, pagename)
        try:
            text = "" if search.re.spent() else storage.load(filename)
        except StorageError:
            continue
        count, excerpts = 0, []
        for line in text.splitlines():
            in_line = matches(search.re, line)
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
        key = (1 if in_name else 0, len(in_name) + count, filename, pagename, str(name_html))
        found.append((key, [None, summary] if in_name else [summary]))
    if timed_out:
        toast("Search regex timed out. Results may be incomplete.", "warning")
    found.sort(key=lambda item: (-item[0][0], -item[0][1], item[0][2]))
    import regex

    regex.purge()  # the package keeps compiled patterns: each search's goes with it
    return dict(found[:MAX_RESULTS])


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
