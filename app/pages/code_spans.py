"""Where a Markdown page's code is: fenced and indented code blocks, code spans, raw HTML blocks
(pre, script, style, textarea) and HTML comments, as
CommonMark reads them (https://spec.commonmark.org/0.31.2/ sections 4.4, 4.5, 6.1), so that
the links in code are left as text by the link map and a rename (app.pages.links).

The renderer's own parser (mistune) keeps no source offsets, so the blocks are found here by
lines, one pass: a fence opens at any indentation, inside quotes (`>`) and list items, and is
closed only by a fence of its own character at least as long (or runs to the end); an
indented block is lines indented four columns past their container (a quote's marks, a list
item's content), which mistune starts even right after a paragraph's line; a code span is a
run of backticks closed by the next run of the same length in its paragraph. Where
containers would end a block early, more is read as code than the renderer does.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections import deque

# A line's container marks (block quotes), indentation and list marker, then a fence.
_FENCE = re.compile(
    r"(?:[ \t]*+>)*+[ \t]*+(?:(?:[-*+]|[0-9]{1,9}[.)])[ \t]++)?(?P<fence>`{3,}+(?=[^`]*$)|~{3,}+)"
)
# CommonMark's HTML blocks of kind 1, whose text is raw up to their end tag, and comments.
_RAW_HTML_BLOCK = re.compile(r" {0,3}<(pre|script|style|textarea)(?:[\s>]|$)", re.IGNORECASE)
# A list item's marker and the spaces after it (its content's column is where they end).
_LIST_ITEM = re.compile(r" {0,3}(?:[-*+]|[0-9]{1,9}[.)])(?: {1,4}|$)")
_QUOTE_MARKS = re.compile(r"(?:[ \t]{0,3}>[ ]?)*+")
_HEADING = re.compile(r"[ \t]{0,3}#{1,6}(?:[ \t]|$)")
_BACKTICKS = re.compile(r"`+")


def code_ranges(content: str) -> list[tuple[int, int]]:
    """The [start, end) offsets of `content`'s code, in order and without overlap: each
    fenced or indented code block whole (its lines), each code span with its backticks."""
    ranges: list[tuple[int, int]] = []
    paragraph: list[tuple[int, int]] = []  # the lines of prose since the last block break
    fence: tuple[str, int] | None = None  # the open fence's character and length
    fence_start = 0
    list_indent: int | None = None  # the open list item's content column, if any
    after_blank = True
    indented_start: int | None = None
    raw_end: str | None = None  # the end tag of the open raw HTML block, if any
    offset = 0
    for line in content.splitlines(keepends=True):
        start, offset = offset, offset + len(line)
        text = line.rstrip("\r\n")
        if raw_end is not None:
            if raw_end in text.lower():
                ranges.append((fence_start, offset))
                raw_end = None
            continue
        if fence is not None:
            closing = _FENCE.match(text)
            if closing and _closes(closing["fence"], fence) and not text[closing.end() :].strip():
                ranges.append((fence_start, offset))
                fence = None
            continue
        blank = not text.strip()
        body = text[_QUOTE_MARKS.match(text).end() :].expandtabs(4)
        indent = len(body) - len(body.lstrip(" "))
        if indented_start is not None:
            if blank or indent >= 4:
                continue
            ranges.append((indented_start, start))
            indented_start = None
        if blank:
            _spans(content, paragraph, ranges)
            after_blank = True
            continue
        item = _LIST_ITEM.match(body)
        if list_indent is not None and after_blank and indent == 0 and not item:
            list_indent = None  # a block back at the left margin ends the list
        # mistune, the renderer, starts indented code even right after a paragraph's line
        if not item and indent >= (4 if list_indent is None else list_indent + 4):
            _spans(content, paragraph, ranges)
            indented_start = start
            continue
        after_blank = False
        raw = _RAW_HTML_BLOCK.match(text)
        if raw and not item:
            _spans(content, paragraph, ranges)
            fence_start, raw_end = start, f"</{raw[1].lower()}>"
            if raw_end in text.lower():
                ranges.append((start, offset))
                raw_end = None
            continue
        opening = _FENCE.match(text)
        if opening:
            _spans(content, paragraph, ranges)
            marks = opening["fence"]
            fence, fence_start = (marks[0], len(marks)), start
            continue
        if item:
            list_indent = item.end() if item.end() < len(body) else item.end() + 1
        paragraph.append((start, offset))
        if _HEADING.match(body):
            _spans(content, paragraph, ranges)
    if fence is not None or raw_end is not None:
        ranges.append((fence_start, len(content)))  # never closed: code to the end
    elif indented_start is not None:
        ranges.append((indented_start, len(content)))
    else:
        _spans(content, paragraph, ranges)
    return _merged(ranges + _comments(content))


def _comments(content: str) -> list[tuple[int, int]]:
    """The [start, end) offsets of each HTML comment (`<!-- ... -->`, one never closed runs
    to the end), in one pass: the renderer shows none of their text."""
    found, at = [], content.find("<!--")
    while at >= 0:
        end = content.find("-->", at + 4)
        end = len(content) if end < 0 else end + 3
        found.append((at, end))
        at = content.find("<!--", end)
    return found


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`ranges` in order, those that overlap joined into one."""
    joined: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


def _closes(marks: str, fence: tuple[str, int]) -> bool:
    return marks[0] == fence[0] and len(marks) >= fence[1]


def _spans(content: str, paragraph: list[tuple[int, int]], ranges: list) -> None:
    """Add the code spans of the paragraph made of `paragraph`'s lines to `ranges`, and
    empty `paragraph`: a run of n backticks opens a span closed by the next run of exactly
    n; a run with no such partner is itself. One pass over the runs."""
    if not paragraph:
        return
    low, high = paragraph[0][0], paragraph[-1][1]
    paragraph.clear()
    runs = [match.span() for match in _BACKTICKS.finditer(content, low, high)]
    runs = [(s + 1, e) if s > low and content[s - 1] == "\\" else (s, e) for s, e in runs]
    later: dict[int, deque[int]] = defaultdict(deque)  # run length: the runs of it, in order
    for number, (s, e) in enumerate(runs):
        if e > s:
            later[e - s].append(number)
    number = 0
    while number < len(runs):
        s, e = runs[number]
        partners = later[e - s]
        while partners and partners[0] <= number:
            partners.popleft()
        if e > s and partners:
            closing = partners.popleft()
            ranges.append((s, runs[closing][1]))
            number = closing
        number += 1
