"""Otterwiki's backtracking Markdown patterns, rewritten to run in linear time.

Otterwiki 2.26.1's wiki-link pattern (renderer_plugins.mistunePluginWikiLink) lets a link's
text run over any `[`, so at every `[[` it scans to the end of a page that has no `]]`: a
200 KB run of `[` spent ~25 s of CPU in it. Each rewrite keeps the pattern and its groups and
puts a possessive look-ahead in front that fails at once unless the text up to the first `]`
is a link's text followed by `]]`; the one change of meaning is that a link's text can no
longer hold `[[` (in `[[a [[b]]` the link is now `[[b]]`, as GitHub reads it).
"""

from __future__ import annotations

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
    import re

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
