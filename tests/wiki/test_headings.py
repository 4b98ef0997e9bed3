"""A page's first heading is found as Otterwiki finds it, in linear time.

Fourteenth review: every page view of a wiki of 2,000 pages whose heads were one long line
cost 2-3.5 s, in Otterwiki's heading patterns run over each page's first 512 characters for
the sidebar (1.75 s of 2.24 s in 4,046 `findall` calls).
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from app.wiki.otterwiki.patterns import first_heading

# Otterwiki 2.26.1's own (otterwiki.util, otterwiki.sidebar), as the reference.
OTTERWIKI_ATX = re.compile(r" {0,3}(#{1,6})(?!#+)(?: *\n+|\s+([^\n]*?)(?:\n+|\s+?#+\s*\n+))")
OTTERWIKI_SETEXT = re.compile(r"([^\n]+)\n *(=|-){2,}[ \t]*\n+")


def otterwikis_heading(content: str) -> str | None:
    head = content[:512]
    found = [text for _, text in OTTERWIKI_ATX.findall(head)]
    found += [text for text, _ in OTTERWIKI_SETEXT.findall(head)]
    return found[0] if found else None


# Heads made of what the patterns look at: hashes, underlines, spaces, tabs, newlines, words.
_PIECES = st.sampled_from(
    ["#", "##", "#######", " ", "  ", "\t", "\n", "\n\n", "=", "--", "a", "Title", "é"]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, max_size=80).map("".join))
def test_the_first_heading_is_otterwikis(content):
    assert first_heading(content) == otterwikis_heading(content)


def test_the_first_heading_of_common_pages():
    pages = {
        "# Title\n\ntext\n": "Title",
        "text\n\n## Second ##\n": "Second",
        "Title\n=====\n\nmore\n": "Title",
        "Title\n---\n": "Title",
        "#\n": "",
        "no heading at all\n": None,
        "# unfinished line without a newline": None,
        "x" * 600 + "\n# past the head\n": None,
    }
    for content, heading in pages.items():
        assert first_heading(content) == otterwikis_heading(content) == heading, content


def test_heads_that_cost_otterwiki_quadratic_time_are_found_the_same():
    for content in ("# " * 256, "a" * 510 + "\n", "# " * 255 + "\n", "#" + " \t" * 250 + "#\n"):
        assert first_heading(content) == otterwikis_heading(content)
