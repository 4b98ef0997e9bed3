"""mistune's readers of an inline link's destination and title (`helpers.parse_link_href`,
`helpers.parse_link_title`), answered in linear time per text.

mistune 3.3 reads `[text](destination "title")`'s destination character by character from
after the `(` to the first unescaped whitespace, counting parentheses, and it reads again from
every `](` it meets: in a text without whitespace each read runs to its end. 10 KB of `[a](`
cost 2 s of CPU, 40 KB 34 s (quadratic; review 39), and every page is one text to it. A
title in parentheses is read to the first `)` likewise: 40 KB of `[a](b (` cost 14 s.
Here one pass over a text finds, for each position, the parenthesis depth before it and where
the unescaped quotes, `)` and NULs are, and each read is a few binary searches. The answers
are mistune's own (tests/wiki/test_render.py compares them); block-level reads (link
reference definitions) and `<...>` destinations still go to mistune, which reads those in
linear time.

What is learned of a text lives while mistune's inline parser parses it (a stack per thread:
a link's text is parsed as a text of its own inside its parent's parse).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager

# mistune.helpers.ASCII_WHITESPACE: where a destination without `<...>` ends.
_ENDS = frozenset(" \t\n\r\f")
# A title's openers and their closers (mistune.helpers.parse_link_title); NUL ends a title.
_CLOSERS = {"'": "'", '"': '"', "(": ")"}
_MARKS = frozenset({*_CLOSERS.values(), "\x00"})


class Destinations:
    """Where every inline link destination of one text `src` ends, found in one pass.

    `read(pos)` returns what mistune's `parse_link_href(src, pos)` returns for a `pos` past
    its leading whitespace, not at a `<`, and not right after a backslash: (destination, the
    position after it) or (None, None).
    """

    def __init__(self, src: str) -> None:
        self.src = src
        self._depth: list[int] = []  # before each position, and at the end
        self._at_depth: dict[int, list[int]] = {}  # depth -> the positions before which it is
        self._stops: list[int] = []  # unescaped whitespace and NUL
        self._marks: dict[str, list[int]] = {mark: [] for mark in _MARKS}  # unescaped ones
        depth = 0
        escaped = False
        for at, char in enumerate(src):
            self._depth.append(depth)
            self._at_depth.setdefault(depth, []).append(at)
            if escaped:  # a backslash's next character: skipped, whatever it is
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                if char in _ENDS or char == "\x00":
                    self._stops.append(at)
                elif char == "(":
                    depth += 1
                elif char == ")":
                    depth -= 1
                if char in _MARKS:
                    self._marks[char].append(at)
        self._depth.append(depth)
        self._at_depth.setdefault(depth, []).append(len(src))

    def read(self, pos: int) -> tuple[str, int] | tuple[None, None]:
        src = self.src
        stop_at = bisect.bisect_left(self._stops, pos)
        stop = self._stops[stop_at] if stop_at < len(self._stops) else len(src)
        start = self._depth[pos]
        below = self._at_depth.get(start - 1, [])
        first = bisect.bisect_right(below, pos)
        if first < len(below) and below[first] - 1 < stop:
            close = below[first] - 1  # the `)` at depth 0: the destination ends before it
            return src[pos:close], close
        if stop < len(src) and src[stop] == "\x00":
            return None, None
        if self._depth[stop] != start:
            return None, None  # unbalanced parentheses
        return src[pos:stop], stop

    def title(self, pos: int) -> tuple[str, int] | tuple[None, None]:
        """What mistune's `parse_link_title(src, ..., len(src))` returns once it skipped the
        whitespace to `pos`: (the title, its backslash escapes still in it, the position
        after its closer) or (None, None)."""
        closer = _CLOSERS.get(self.src[pos])
        if closer is None:
            return None, None
        close = _first_after(self._marks[closer], pos)
        if close is None:
            return None, None  # read to the end: no closer
        nul = _first_after(self._marks["\x00"], pos)
        if nul is not None and nul < close:
            return None, None
        return self.src[pos + 1 : close], close + 1


def _first_after(positions: list[int], pos: int) -> int | None:
    found = bisect.bisect_right(positions, pos)
    return positions[found] if found < len(positions) else None


_parsing = threading.local()  # a stack of [text, its Destinations or None until asked]


@contextmanager
def reading(src: str) -> Iterator[None]:
    """A block in which mistune's inline parser parses `src`: link destinations and titles in
    it are read by one Destinations, made at the first read and dropped at the block's end."""
    texts = _parsing.__dict__.setdefault("texts", [])
    texts.append([src, None])
    try:
        yield
    finally:
        texts.pop()


def _destinations(src: str) -> Destinations | None:
    for known in reversed(getattr(_parsing, "texts", ())):
        if known[0] is src:
            if known[1] is None:
                known[1] = Destinations(src)
            return known[1]
    return None


def _linear_href(original: Callable, skip_whitespace: Callable) -> Callable:
    def parse_link_href(src: str, start_pos: int, block: bool = False):
        destinations = None if block else _destinations(src)
        if destinations is None:
            return original(src, start_pos, block)
        pos = skip_whitespace(src, start_pos)
        if pos >= len(src) or src[pos] == "<" or (pos and src[pos - 1] == "\\"):
            return original(src, start_pos, block)
        return destinations.read(pos)

    parse_link_href.robot_linear = True
    parse_link_href.__wrapped__ = original
    return parse_link_href


def _linear_title(original: Callable, skip_whitespace: Callable, unescape: Callable) -> Callable:
    def parse_link_title(src: str, start_pos: int, max_pos: int):
        destinations = _destinations(src) if max_pos == len(src) else None
        if destinations is None:
            return original(src, start_pos, max_pos)
        if start_pos >= max_pos or src[start_pos] not in _ENDS:
            return None, None
        pos = skip_whitespace(src, start_pos, max_pos)
        if pos >= max_pos:
            return None, None
        title, end = destinations.title(pos)
        return (None, None) if title is None else (unescape(title), end)

    parse_link_title.__wrapped__ = original
    return parse_link_title


def install_linear_link_destinations() -> None:
    """Make mistune's inline link destinations and titles (mistune.helpers.parse_link_href
    and parse_link_title, called by helpers.parse_link) read in linear time per text, for
    every InlineParser. Installing twice does nothing."""
    import mistune.helpers as helpers
    from mistune.inline_parser import InlineParser

    if getattr(helpers.parse_link_href, "robot_linear", False):
        return
    helpers.parse_link_href = _linear_href(
        helpers.parse_link_href, helpers._skip_link_start_whitespace
    )
    helpers.parse_link_title = _linear_title(
        helpers.parse_link_title, helpers._skip_ascii_whitespace, helpers.unescape_char
    )
    parse = InlineParser.parse

    def parse_inline(self, state):
        with reading(state.src):
            return parse(self, state)

    parse_inline.__wrapped__ = parse
    InlineParser.parse = parse_inline
