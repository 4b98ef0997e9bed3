"""Pure text operations on Markdown pages: pick one section, replace one exact span, append."""

from __future__ import annotations

import re

from app.core.errors import BadRequest
from app.core.errors import NotFound

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")


def _headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """Return (line index, level, title) of every ATX heading outside fenced code blocks."""
    found, fence = [], None
    for index, line in enumerate(lines):
        opener = _FENCE.match(line)
        if opener:
            marker = opener.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            continue
        if fence is None:
            heading = _HEADING.match(line)
            if heading:
                found.append((index, len(heading.group(1)), heading.group(2).strip()))
    return found


def headings_of(content: str) -> list[str]:
    """Return the titles of a page's headings, in order."""
    return [title for _, _, title in _headings(content.splitlines())]


def section_of(content: str, heading: str) -> str:
    """Return the section under `heading` (the heading line up to the next of the same or
    higher level); raise NotFound listing the page's headings when there is no such heading."""
    wanted = heading.strip().lstrip("#").strip().casefold()
    if not wanted:
        raise BadRequest("section heading is empty")
    lines = content.splitlines()
    headings = _headings(lines)
    for position, (index, level, title) in enumerate(headings):
        if title.casefold() == wanted:
            end = len(lines)
            for later_index, later_level, _ in headings[position + 1 :]:
                if later_level <= level:
                    end = later_index
                    break
            return "\n".join(lines[index:end]).rstrip() + "\n"
    known = ", ".join(repr(title) for _, _, title in headings) or "none"
    raise NotFound(f"no section {heading!r} on this page (headings: {known})")


def replace_span(content: str, old: str, new: str) -> str:
    """Replace the one exact occurrence of `old`; raise when it is absent or ambiguous."""
    if not old:
        raise BadRequest("old_text is empty: give the exact text to replace")
    count = content.count(old)
    if count == 0:
        raise NotFound("old_text was not found on the page (it must match exactly, whitespace too)")
    if count > 1:
        raise BadRequest(
            f"old_text occurs {count} times on the page: include more surrounding text so it "
            "matches exactly once"
        )
    return content.replace(old, new, 1)


def append_text(content: str, addition: str) -> str:
    """Return `content` with `addition` added as a new paragraph."""
    if not content.strip():
        return addition
    return content.rstrip("\n") + "\n\n" + addition
