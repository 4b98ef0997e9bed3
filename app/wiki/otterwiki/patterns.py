"""Otterwiki's backtracking Markdown patterns, rewritten to run in linear time: the wiki-link
pattern and the first-heading patterns of the sidebar and page titles (first_heading). (Its
rename's backlink patterns are not used: app.wiki.otterwiki.link_tools.)

Otterwiki 2.26.1's wiki-link pattern (renderer_plugins.mistunePluginWikiLink) lets a link's
text run over any `[`, so at every `[[` it scans to the end of a page that has no `]]`: a
200 KB run of `[` spent ~25 s of CPU in it. Each rewrite keeps the pattern and its groups and
puts a possessive look-ahead in front that fails at once unless the text up to the first `]`
is a link's text followed by `]]`; the one change of meaning is that a link's text can no
longer hold `[[` (in `[[a [[b]]` the link is now `[[b]]`, as GitHub reads it).
"""

from __future__ import annotations

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
