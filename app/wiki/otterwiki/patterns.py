"""Otterwiki's backtracking Markdown patterns, rewritten to run in linear time: the wiki-link
pattern, the embedding block's scanner (EmbeddingScanner) and the first-heading patterns of the
sidebar and page titles (first_heading). (Its rename's backlink patterns are not used:
app.wiki.otterwiki.link_tools.)

Otterwiki 2.26.1's wiki-link pattern (renderer_plugins.mistunePluginWikiLink) lets a link's
text run over any `[`, so at every `[[` it scans to the end of a page that has no `]]`: a
200 KB run of `[` spent ~25 s of CPU in it. Each rewrite keeps the pattern and its groups and
puts a possessive look-ahead in front that fails at once unless the text up to the first `]`
is a link's text followed by `]]`; the one change of meaning is that a link's text can no
longer hold `[[` (in `[[a [[b]]` the link is now `[[b]]`, as GitHub reads it).
"""

from __future__ import annotations

import bisect
import re
from types import ModuleType

# The text of a link: anything but `]`, and `[` only when no second `[` follows. Possessive
# (`++`, Python 3.11): it never gives back what it took, so a failed look-ahead costs one scan.
_LINK_TEXT_THEN_CLOSE = r"(?=(?:[^\[\]]|\[(?!\[))++\]\])"


def linear_wiki_link(pattern: str) -> str:
    """Return Otterwiki's wiki-link `pattern` (a str starting with `\\[\\[`) with the guard.

    The groups are unchanged, so Otterwiki's replace functions and parsers read them as before.
    Raises ValueError for a pattern that does not start with `\\[\\[` (a new Otterwiki).
    """
    opener = r"\[\["
    if not pattern.startswith(opener):
        raise ValueError(f"not a wiki-link pattern: {pattern[:40]!r}")
    return opener + _LINK_TEXT_THEN_CLOSE + pattern[len(opener) :]


def install_linear_patterns(server: ModuleType) -> None:
    """Put the linear wiki-link patterns into Otterwiki's plugin and its built renderers.

    `server` is the booted `otterwiki.server`; its `app_renderer` and the module-level
    `otterwiki.renderer.render` registered the old inline pattern when they were built, so
    both are registered again; renderers built later (the Include embedding's) read the class.
    Installing twice does nothing.
    """
    import otterwiki.renderer
    from otterwiki.renderer_plugins import mistunePluginWikiLink as plugin

    if plugin.WIKI_LINK.startswith(r"\[\[" + _LINK_TEXT_THEN_CLOSE):
        return
    plugin.WIKI_LINK = linear_wiki_link(plugin.WIKI_LINK)
    plugin.WIKI_LINK_RE = re.compile(plugin.WIKI_LINK)
    plugin.WIKI_LINK_MOD = linear_wiki_link(plugin.WIKI_LINK_MOD)
    plugin.WIKI_LINK_MOD_RE = re.compile(plugin.WIKI_LINK_MOD)
    for renderer in (server.app_renderer, otterwiki.renderer.render):
        inline = renderer.inline_parser
        wikilink = otterwiki.renderer.plugin_wikilink
        inline.register("wikilink", plugin.WIKI_LINK_MOD, wikilink.parse_wikilink)


# Otterwiki's patterns for a page's first heading (otterwiki.util and otterwiki.sidebar, the
# same two), run over the first 512 characters of every page for every page view's sidebar.
# Unanchored, each tries every position: a head of one long line cost ~1 ms (the setext
# pattern scans to the line's end from each of its characters, the ATX one does from each `#`
# when no newline follows), and a wiki of 2,000 such pages made every view 3 s.
_ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?!#+)(?: *\n+|\s+([^\n]*?)(?:\n+|\s+?#+\s*\n+))")
# Anchored at line starts (MULTILINE): a setext heading's text runs from its line's start,
# and an attempt from inside a line succeeds exactly when the one from its start does.
_SETEXT_HEADING = re.compile(r"^([^\n]+)\n *(=|-){2,}[ \t]*\n+", re.MULTILINE)
HEAD_CHARS = 512


def first_heading(content: str) -> str | None:
    """The text of the first heading in the first HEAD_CHARS characters of `content` (str), as
    Otterwiki's `get_header` finds it: the first ATX heading's (`# Title`; "" for a bare
    `#`), else the first setext heading's, else None. In linear time: both patterns end in a
    newline, so nothing after the head's last newline can be part of a match and is not
    searched, and the setext pattern is tried at line starts only."""
    head = content[:HEAD_CHARS]
    head = head[: head.rfind("\n") + 1]
    if found := _ATX_HEADING.search(head):
        return found.group(2) or ""
    if found := _SETEXT_HEADING.search(head):
        return found.group(1)
    return None


def install_linear_headings() -> None:
    """Make Otterwiki find a page's first heading with `first_heading`: its `get_header` (as
    imported by otterwiki.helper and otterwiki.wiki) and the sidebar's `read_header`.
    Installing twice does nothing."""
    import otterwiki.helper
    import otterwiki.sidebar
    import otterwiki.util
    import otterwiki.wiki

    for module in (otterwiki.util, otterwiki.helper, otterwiki.wiki):
        module.get_header = first_heading
    index = otterwiki.sidebar.SidebarPageIndex
    if getattr(index.read_header, "robot_linear", False):
        return

    def read_header(self, filename: str) -> str | None:
        try:
            head = otterwiki.sidebar.storage.load(filename, size=HEAD_CHARS)
        except otterwiki.sidebar.StorageError:
            return None
        return first_heading(head)

    read_header.robot_linear = True
    index.read_header = read_header


# Otterwiki's embedding block (renderer_plugins.mistunePluginEmbeddings): `{{Name ...}}` runs
# lazily, over lines, to the first `}}` that ends a line. mistune joins every block rule into
# one scanner and matches or searches it from each block's start; where no `}}` ends a line
# later, every `{{Name` it passes scans to the end of the text and fails: 19 KB of `{{Video `
# cost 2 s of CPU (quadratic), and CI's property test drew it.
EMBEDDING_RULE = "embedding_block"
EMBEDDING_SCANNER_PATTERN = r"{{(?s:([A-Za-z ]+)(.*?))}}$"
_EMBEDDING_START = re.compile(r"{{(?=[A-Za-z ])")


def embedding_starts(src: str) -> list[int]:
    """The offsets (ascending ints) in `src` where Otterwiki's embedding pattern matches.

    The pattern matches at a `{{` followed by a name character exactly when a `}}` ends a line
    after it: the name cannot hold `}`, so it ends before that `}}`, and the lazy rest reaches
    it. So the starts are the `{{Name` before the last `}}` that ends a line (multi-line `$`:
    before a newline or at the end). Linear in len(src): one backward and one forward scan.
    """
    end = len(src)
    while (close := src.rfind("}}", 0, end)) >= 0:
        if close + 2 == len(src) or src[close + 2] == "\n":
            return [found.start() for found in _EMBEDDING_START.finditer(src, 0, close)]
        end = close + 1  # `}}}`: the `}}` one earlier may end the line
    return []


class _ScannedText:
    """What an EmbeddingScanner learned about one text: where embeddings start, and its last
    search of the other rules (from `searched_from`, finding `found`)."""

    __slots__ = ("src", "starts", "searched_from", "found")

    def __init__(self, src: str) -> None:
        self.src = src
        self.starts = embedding_starts(src)
        self.searched_from: int | None = None
        self.found: re.Match[str] | None = None


class EmbeddingScanner:
    """mistune's block scanner with Otterwiki's embedding rule, answering as the compiled one
    (`full`) does, in linear time: the embedding rule is tried only where it matches
    (embedding_starts), every other rule by `others`, the same scanner without it.

    `match(src, pos)` and `search(src, pos)` return what `full.match` and `full.search`
    return (an re.Match or None): the rules keep their order, so where the embedding rule
    matches, the rules before it still win. A search's answer from `others` is kept and reused
    for a later search of the same text that starts before it (mistune searches again from the
    end of each embedding it found). mistune compiles a scanner for each parse of a text (a
    page, an embedding's arguments, a list item), so one is made for each: what it keeps is
    one text's, and goes with that parse.
    """

    def __init__(self, full: re.Pattern[str], others: re.Pattern[str]) -> None:
        self.full = full
        self.others = others
        self._scanned: _ScannedText | None = None

    def _text(self, src: str) -> _ScannedText:
        if self._scanned is None or self._scanned.src is not src:
            self._scanned = _ScannedText(src)
        return self._scanned

    def match(self, src: str, pos: int = 0) -> re.Match[str] | None:
        starts = self._text(src).starts
        at = bisect.bisect_left(starts, pos)
        if at < len(starts) and starts[at] == pos:
            return self.full.match(src, pos)
        return self.others.match(src, pos)

    def search(self, src: str, pos: int = 0) -> re.Match[str] | None:
        text = self._text(src)
        found = self._search_others(text, pos)
        at = bisect.bisect_left(text.starts, pos)
        if at < len(text.starts) and (found is None or text.starts[at] <= found.start()):
            # No rule matches between pos and this start, so here the embedding rule (or a
            # rule before it) matches, as the full scanner's search would have found.
            return self.full.match(src, text.starts[at])
        return found

    def _search_others(self, text: _ScannedText, pos: int) -> re.Match[str] | None:
        # A match found from an earlier position is the first from any position up to it.
        if text.searched_from is not None and text.searched_from <= pos:
            if text.found is None or pos <= text.found.start():
                return text.found
        text.searched_from, text.found = pos, self.others.search(text.src, pos)
        return text.found


def install_linear_embeddings() -> None:
    """Make every Otterwiki block parser (otterwiki.renderer.OtterwikiBlockParser, built now or
    later) scan with an EmbeddingScanner wherever its rules hold the embedding rule.
    Installing twice does nothing. Raises ValueError when Otterwiki's embedding pattern is not
    the one EmbeddingScanner was written for (a new Otterwiki)."""
    from otterwiki.renderer import OtterwikiBlockParser as parser_class
    from otterwiki.renderer_plugins import mistunePluginEmbeddings

    if mistunePluginEmbeddings._EMBEDDING_SCANNER_PATTERN != EMBEDDING_SCANNER_PATTERN:
        raise ValueError("Otterwiki's embedding pattern changed: check EmbeddingScanner")
    compile_scanner = parser_class.compile_sc
    if getattr(compile_scanner, "robot_linear", False):
        return

    def compile_sc(self, rules=None):
        full = compile_scanner(self, rules)
        names = self.rules if rules is None else rules
        if self.specification.get(EMBEDDING_RULE) != EMBEDDING_SCANNER_PATTERN:
            return full
        if EMBEDDING_RULE not in names:
            return full
        others = compile_scanner(self, [name for name in names if name != EMBEDDING_RULE])
        return EmbeddingScanner(full, others)  # mistune keeps both compiled: cheap to make

    compile_sc.robot_linear = True
    compile_sc.__wrapped__ = compile_scanner  # Otterwiki's (mistune's), for comparison
    parser_class.compile_sc = compile_sc
