"""What a page links to and how a rename rewrites it (app/pages/links.py), as properties over
texts built from links of every kind, look-alikes and code: the two read links alike, so the
link map names exactly the pages a rename changes, and a rename leaves no link to the old page."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from app.pages.links import MAX_LINK_TARGETS
from app.pages.links import _links_in
from app.pages.links import page_links
from app.pages.links import rewrite_links
from app.pages.paths import MAX_CONTENT_BYTES
from app.pages.paths import PathRules

RULES = PathRules(retain_case=False)
OLD, NEW = "T", "New"

# Targets that name the old page or something below it, and ones that only look like it.
_NAMING = ["T", "/T", "t", "T/Sub", "/t/sub#part", "T/pic.png", "%54", "Ｔ", "./T", "T?x=1"]
_LOOKALIKE = [
    "Tee",
    "T2/Sub",
    "/Tx",
    "T.png",
    "../T",
    "../../T/Sub",
    "../../../T",
    "https://x.org/T",
    "//T",
    "#T",
    "Sub/T",
]
_TARGETS = st.sampled_from(_NAMING + _LOOKALIKE)
_PIECES = st.one_of(
    _TARGETS.map(lambda t: f"[[{t}]]"),
    _TARGETS.map(lambda t: f"[[Label|{t}]]"),
    _TARGETS.map(lambda t: f"[text]({t})"),
    _TARGETS.map(lambda t: f"![alt]({t})"),
    _TARGETS.map(lambda t: f'[a]( <{t}> "title")'),
    _TARGETS.map(lambda t: f"\n[ref]: {t}\n"),
    _TARGETS.map(lambda t: f"\n   [ref]: <{t}> 'x'\n"),
    _TARGETS.map(lambda t: f"\n[^note]: {t}\n"),
    st.sampled_from(["`", "``", "\n```\n", "\n~~~\n", "[", "]", "(", ")", "[[", "]]", " ", "\n"]),
    st.sampled_from(["word", "[here][ref]", "T", "|", "#", ":", "!"]),
)
_TEXTS = st.lists(_PIECES, max_size=12).map("".join)


# Linking pages at the root and in a folder (relative links name other pages from there).
_LINKERS = st.sampled_from(["linker", "dir/linker", "a/b/linker"])


def _names_old(content: str, linker: str) -> bool:
    found = page_links(RULES, linker, content)
    old_dir = RULES.attachment_dir(OLD)
    return any(
        RULES.filename(page) == RULES.filename(OLD) or page.lower().startswith(old_dir + "/")
        for page in found.pages
    ) or any(folder == old_dir or folder.startswith(old_dir + "/") for folder in found.folders)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS, _LINKERS)
def test_a_rename_changes_exactly_the_pages_that_link_to_the_old_page(content, linker):
    rewritten = rewrite_links(RULES, linker, content, OLD, NEW)
    assert (rewritten != content) == _names_old(content, linker)
    assert not _names_old(rewritten, linker)  # every link to it, below it, to its files moved


def _between_links(content: str) -> list[str]:
    """The text between the links of `content`, as _links_in finds them."""
    parts, done = [], 0
    for match in _links_in(content):
        parts.append(content[done : match.start()])
        done = match.end()
    return [*parts, content[done:]]


@settings(max_examples=300, deadline=None)
@given(_TEXTS, _LINKERS)
def test_a_rename_changes_nothing_but_links(content, linker):
    """Code, look-alikes and prose around the links stay exactly as written."""
    rewritten = rewrite_links(RULES, linker, content, OLD, NEW)
    assert _between_links(rewritten) == _between_links(content)


@pytest.mark.parametrize(
    ("content", "new", "rewritten"),
    [
        ("[[T]]", "Odd]Name", "[Odd\\]Name](/Odd%5DName)"),
        ("[[Label|T#part]]", "Odd]Name", "[Label](/Odd%5DName#part)"),
        ("[[T]]", "E[[F", "[E&#91;&#91;F](/E%5B%5BF)"),
        ("[[T]]", "G[H", "[[G[H]]"),  # one '[' a wiki link holds
        # Twenty-eighth review: a wiki link's name is percent-decoded, and the text is HTML.
        ("[[T]]", "Per%cent", "[Per%cent](/Per%25cent)"),
        ("[[T#Some Heading]]", "Per%cent", "[Per%cent](/Per%25cent#Some%20Heading)"),
        ("[[Title|T#x)y]]", "Per%cent", "[Title](/Per%25cent#x%29y)"),
        ("[[T]]", "Per%25cent", "[Per%25cent](/Per%2525cent)"),
        ("[[T]]", "X/<b>&]", "[X/&lt;b>&amp;\\]](/X/%3Cb%3E%26%5D)"),
    ],
)
def test_a_new_name_a_wiki_link_cannot_hold_is_written_as_a_markdown_link(content, new, rewritten):
    """Twenty-seventh review: a rename to `Odd]Name` wrote `[[Odd]Name]]`, which is text."""
    assert rewrite_links(RULES, "linker", content, OLD, new) == rewritten
    assert page_links(RULES, "linker", rewritten).pages == (RULES.page_path(RULES.filename(new)),)


@pytest.mark.parametrize("linker", ["root", "Zdir/sub", "a/b/c"])
def test_a_link_above_the_root_stays_at_the_root_as_a_browser_reads_it(linker):
    """Twenty-seventh review: `[x](../Foo)` at the root named nothing, so the same text in
    a folder (where it names Foo) shared that empty answer, and a rename missed it."""
    text = "see [x](" + "../" * (linker.count("/") + 1) + "Foo)"
    found = page_links(RULES, linker, text)
    assert found.pages == ("Foo",) and found.relative
    assert rewrite_links(RULES, linker, text, "Foo", "Foo2") == "see [x](/Foo2)"


@pytest.mark.parametrize(
    ("content", "rewritten"),
    [
        # Thirtieth review: a `<!--` in code hid the later links from a rename.
        (
            "Comments start with `<!--`.\n\nSee [[T]].",
            "Comments start with `<!--`.\n\nSee [[New]].",
        ),
        ("```html\n<!-- x\n```\n[[T]]", "```html\n<!-- x\n```\n[[New]]"),
        ("Write <!-- here. [[T]]", "Write <!-- here. [[New]]"),
        ("\\\\[[T]]", "\\\\[[New]]"),
        ("> ```\n> code\n\n[[T]]", "> ```\n> code\n\n[[New]]"),
        (">\t[[T]]", ">\t[[New]]"),
        # and read as links text the renderer shows as code or as text
        ("- - -\n    [[T]]", None),
        ("- item\n\n* * *\n    [[T]]", None),
        ("```\nx\n    ```\n[[T]]", None),
        ('---\nsee: "[[T]]"\n---\n', None),
        ("$$\n[[T]]\n$$", None),
        ("<div>\n[[T]]\n</div>", None),
        ("\\[t](/T)", None),
    ],
)
def test_a_rename_reads_links_where_the_renderer_makes_them(content, rewritten):
    """Each case as tests/wiki/test_links_as_rendered.py checks it against the renderer;
    None: the text holds no link, and a rename leaves it as it is."""
    assert rewrite_links(RULES, "linker", content, OLD, NEW) == (rewritten or content)
    assert bool(page_links(RULES, "linker", content).pages) == (rewritten is not None)


def test_every_distinct_link_of_a_page_is_reported():
    """Thirtieth review: a page of 10,000 distinct links, then one to T, did not report T
    (MAX_LINK_TARGETS stopped silently); no page of MAX_CONTENT_BYTES reaches it now."""
    content = " ".join(f"[[P{n}]]" for n in range(10_000)) + " [[T]]"
    found = page_links(RULES, "linker", content).pages
    assert len(found) == 10_001 and found[-1] == "T"
    assert MAX_LINK_TARGETS * 5 > MAX_CONTENT_BYTES


@pytest.mark.parametrize(
    "content",
    [
        ">" * 200_000,
        ">\t" * 100_000,
        "$" * 200_000,
        "$a " * 60_000,
        "$$ x\n" * 40_000,
        "<!--" * 50_000,
        "x <!-- a" * 25_000,
        "<div" + " a=b" * 50_000,
        "<span" + ' a="b"' * 30_000 + "\n",
        "\\" * 200_000 + "[[T]]",
        "\\![a](T)" * 25_000,
        "> > > ```\n> x\n" * 20_000,
        "- ```\n  x\n" * 30_000,
        "a\n===\n" * 40_000,
        "---\n" + "a\n" * 100_000,
    ],
    ids=lambda text: f"{text[:6]!r}x{len(text)}",
)
def test_markup_of_a_long_page_is_read_in_one_pass(content):
    """Quote marks, math, comments, HTML tags and backslashes (thirtieth review) are read
    in linear time: each of these pages takes well under a second."""
    started = time.perf_counter()
    page_links(RULES, "linker", content)
    rewrite_links(RULES, "linker", content, OLD, NEW)
    assert time.perf_counter() - started < 5
