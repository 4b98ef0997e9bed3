"""Otterwiki's rename with "Update backlinks" over its link patterns made linear
(app.wiki.otterwiki.patterns.BACKLINK_PATTERNS)."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.wiki.otterwiki.patterns import BACKLINK_PATTERNS
from tests.wiki.test_search import owner  # noqa: F401 (a fixture)
from tests.wiki.test_search import world  # noqa: F401 (a fixture)

# Otterwiki 2.26.1's own (otterwiki/backlinks.py), to compare with.
ORIGINALS = {
    "WIKILINK_RE": r"\[\[([^\]]+)\]\]",
    "IMAGE_LINK_WRAPPER_RE": r"\[(!\[[^\]]*\]\([^)]+\))\]\((/[^)]+)\)",
    "IMAGE_LINK_RE": r"!\[([^\]]*)\]\((/[^)]+)\)",
    "MARKDOWN_LINK_RE": r"\[([^\]]+)\]\((/[^)]+)\)",
}
WORD = st.text(alphabet="ab /.#|-", min_size=1, max_size=6)
PIECE = st.one_of(
    st.text(alphabet="ab ()!|\n", max_size=8),
    st.builds("[[{}]]".format, WORD),
    st.builds("[{}](/{})".format, WORD, WORD),
    st.builds("![{}](/{})".format, WORD, WORD),
    st.builds("[![{}](/{})](/{})".format, WORD, WORD, WORD),
)


def test_the_wiki_app_puts_the_linear_patterns_in(world):  # noqa: F811
    import otterwiki.backlinks

    installed = {name: getattr(otterwiki.backlinks, name).pattern for name in ORIGINALS}
    assert installed == BACKLINK_PATTERNS


@given(st.lists(PIECE, max_size=12).map("".join))
def test_the_linear_patterns_find_what_otterwikis_found(text):
    """Links whose text and target hold no `[`: everything Otterwiki's rename writes. (In a
    link around an image, `[![a](/b)](/c)`, Otterwiki's other patterns matched the outer
    link's text up to the image's `]`; its wrapper pattern rewrites both URLs first.)"""
    for name, original in ORIGINALS.items():
        if name != "IMAGE_LINK_WRAPPER_RE" and "[![" in text:
            continue
        ours = [m.groups() for m in re.finditer(BACKLINK_PATTERNS[name], text)]
        assert ours == [m.groups() for m in re.finditer(original, text)], name


@pytest.mark.parametrize("name", list(BACKLINK_PATTERNS))
def test_a_page_of_brackets_is_one_scan(name):
    """Otterwiki's patterns spent 5 s on 20 KB of `[` (quadratic); these read 200 KB of
    each opener in one pass: the substitution finds no link and returns the text."""
    for text in ("[" * 200_000, "[x](/" * 40_000, "![x](/" * 40_000, "[[x|" * 50_000):
        assert re.sub(BACKLINK_PATTERNS[name], "", text) == text


def test_a_rename_updating_backlinks_passes_a_page_of_brackets(world, owner):  # noqa: F811
    """Twenty-fifth review, the UI channel: with 200 KB of `[` in any page, Otterwiki's
    rename with "Update backlinks" ran past the worker timeout."""
    owner.save("alpha", "Brackets", "[" * 200_000)
    owner.save("alpha", "Linker", "see [[Renamed Old]] and [it](/Renamed%20Old#top)")
    owner.save("alpha", "Renamed Old", "x")
    response = owner.form_post(
        "alpha",
        "/Renamed Old/rename",
        "/Renamed Old/rename",
        {"new_pagename": "Renamed New", "update_backlinks": "y", "message": ""},
    )
    assert response.status_code in (200, 302), response.get_data(as_text=True)[-500:]
    linker = (world.settings.repo_path("alpha") / "linker.md").read_text()
    assert linker.strip() == "see [[Renamed New]] and [it](/Renamed%20New#top)"
