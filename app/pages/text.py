"""Pure text operations on Markdown pages: pick one section, replace one exact span, append."""

from __future__ import annotations

import re

from app.core.errors import BadRequest
from app.core.errors import NotFound

# The title is the rest of the line less its closing hashes and blanks, cut with rstrip: a lazy
# group before `[ \t#]*$` backtracked through them for each character it took, quadratic in
# a run of blanks (a 160 KB line: 46 s of the MCP server's event loop, review 54).
_HEADING = re.compile(r"(#{1,6})[ \t]+(.*)")
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
                title = heading.group(2).rstrip(" \t#").strip()
                found.append((index, len(heading.group(1)), title))
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
    raise NotFound(f"no section {_short(heading)!r} on this page (headings: {_listed(headings)})")


# How much of a page's headings a missing section's error names: a page's headings may be
# megabytes, and the error goes back to an MCP client whole.
_LISTED_HEADINGS = 50
_LISTED_CHARS = 100


def _short(text: str) -> str:
    return text if len(text) <= _LISTED_CHARS else text[: _LISTED_CHARS - 1] + "…"


def _listed(headings: list[tuple[int, int, str]]) -> str:
    """The first _LISTED_HEADINGS titles, each cut to _LISTED_CHARS, and how many more."""
    named = ", ".join(repr(_short(title)) for _, _, title in headings[:_LISTED_HEADINGS])
    more = len(headings) - _LISTED_HEADINGS
    return (named or "none") + (f" and {more} more" if more > 0 else "")


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
