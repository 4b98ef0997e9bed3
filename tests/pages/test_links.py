"""What a page links to and how a rename rewrites it (app/pages/links.py), as properties over
texts built from links of every kind, look-alikes and code: the two read links alike, so the
link map names exactly the pages a rename changes, and a rename leaves no link to the old page."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from app.pages.links import MAX_LINK_TARGETS
from app.pages.links import _links_in
from app.pages.links import move_page_text
from app.pages.links import page_links
from app.pages.links import rewrite_links
from app.pages.paths import MAX_CONTENT_BYTES
from app.pages.paths import PathRules
from tests.wiki.test_links_as_rendered import _rendered_targets
from tests.wiki.test_sanitize import render  # noqa: F401 (fixtures)
from tests.wiki.test_sanitize import server  # noqa: F401
from tests.wiki.test_sanitize import wiki  # noqa: F401

RULES = PathRules(retain_case=False)
OLD, NEW = "T", "New"

# Targets that name the old page or something below it, and ones that only look like it.
_NAMING = ["T", "/T", "t", "T/Sub", "/t/sub#part", "T/pic.png", "%54", "Ｔ", "./T", "T?x=1"]
_NAMING += ["/x/../T", "/T/./Sub", "/T/x/../pic.png"]  # dot segments (review 32)
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
    "/T/../Tee",
    "/T/pic.png =100x",  # an image size Otterwiki does not read: no link (review 32)
]


def _texts(targets: list[str]) -> st.SearchStrategy[str]:
    """Texts of links of every kind to `targets`, look-alikes, code and prose."""
    sampled = st.sampled_from(targets)
    pieces = st.one_of(
        sampled.map(lambda t: f"[[{t}]]"),
        sampled.map(lambda t: f"[[Label|{t}]]"),
        sampled.map(lambda t: f"[text]({t})"),
        sampled.map(lambda t: f"![alt]({t})"),
        sampled.map(lambda t: f'[a]( <{t}> "title")'),
        sampled.map(lambda t: f'<a href="{t}">h</a>'),
        sampled.map(lambda t: f"\n[ref]: {t}\n"),
        sampled.map(lambda t: f"\n   [ref]: <{t}> 'x'\n"),
        sampled.map(lambda t: f"\n[^note]: {t}\n"),
        st.sampled_from(
            ["`", "``", "\n```\n", "\n~~~\n", "[", "]", "(", ")", "[[", "]]", " ", "\n"]
        ),
        st.sampled_from(["word", "[here][ref]", "T", "|", "#", ":", "!"]),
    )
    return st.lists(pieces, max_size=12).map("".join)


_TEXTS = _texts(_NAMING + _LOOKALIKE)


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
# CI (stop 33's run): `[[New/Sub]]` after the text's `[` read as a link to `[New/Sub`.
@example("[[[[../../T/Sub]]", "linker")
@example("x [[[[T/../T/a]] y", "dir/linker")
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


# Review 32: a rename moved the page and its subpages but left their relative links as
# written, so from the new folder they named pages that do not exist.
_MV = (
    "[o](Other%20Page) [o2](../Other%20Page) [self](Mv#top) [kid](Mv/Kid) [abs](/Other%20Page)"
    " [[Other Page]] [[Mv/Kid]] `[c](Other%20Page)`\n\n```\n[d](Mv)\n```\n"
)
_MV_MOVED = (
    "[o](/Other%20Page) [o2](/Other%20Page) [self](/Deep/Er/Mv2#top) [kid](/Deep/Er/Mv2/Kid)"
    " [abs](/Other%20Page) [[Other Page]] [[Deep/Er/Mv2/Kid]] `[c](Other%20Page)`\n\n```\n"
    "[d](Mv)\n```\n"
)
_KID = (
    "[o](../Other%20Page) [sib](Sib) [up](../Mv) ![p](pic.png) ![q](../Mv/pic.png)"
    ' <a href="../Other%20Page#x">h</a> [[Mv/Sib]] `[c](../Mv)` see [r].\n\n[r]: ../Mv/Sib\n'
)
_KID_MOVED = (
    "[o](/Other%20Page) [sib](Sib) [up](/Deep/Er/Mv2) ![p](pic.png) ![q](/Deep/Er/Mv2/pic.png)"
    ' <a href="/Other%20Page#x">h</a> [[Deep/Er/Mv2/Sib]] `[c](../Mv)` see [r].\n\n'
    "[r]: /Deep/Er/Mv2/Sib\n"
)


@pytest.mark.parametrize(
    ("old_path", "new_path", "content", "moved"),
    [
        ("Mv", "Deep/Er/Mv2", _MV, _MV_MOVED),
        ("Mv/Kid", "Deep/Er/Mv2/Kid", _KID, _KID_MOVED),
        # as Pages names them: the files' paths, in lower case
        ("mv", "deep/er/mv2", _MV, _MV_MOVED),
        ("mv/kid", "deep/er/mv2/kid", _KID, _KID_MOVED),
    ],
)
def test_a_moved_page_s_relative_links_name_what_they_named(old_path, new_path, content, moved):
    """Links to other pages are written from the root; links to siblings that move with the
    page, absolute links and code stay as written; links to the renamed page itself move."""
    assert move_page_text(RULES, old_path, new_path, content, "Mv", "Deep/Er/Mv2") == moved
    before = page_links(RULES, old_path, content)
    after = page_links(RULES, new_path, moved)
    assert set(after.pages) == {
        {"Mv": "Deep/Er/Mv2"}.get(page, page.replace("Mv/", "Deep/Er/Mv2/"))
        for page in before.pages
    }
    assert set(after.folders) == {f.replace("mv", "deep/er/mv2") for f in before.folders}
    # unmoved, the same text is only renamed
    assert move_page_text(RULES, old_path, old_path, content, "Mv", "Deep/Er/Mv2") == (
        rewrite_links(RULES, old_path, content, "Mv", "Deep/Er/Mv2")
    )


@pytest.mark.parametrize(
    ("old_path", "new_path", "content", "moved"),
    [
        # in one folder: relative links to other pages still name them
        (
            "Mv",
            "Mv2",
            "[o](Other) [o2](../Other) [s](Mv) [k](Mv/Kid)",
            "[o](Other) [o2](../Other) [s](/Mv2) [k](/Mv2/Kid)",
        ),
        (
            "Mv/Kid",
            "Mv2/Kid",
            "[o](../Other) [s](Sib) [u](../Mv#a)",
            "[o](../Other) [s](Sib) [u](/Mv2#a)",
        ),
        # up a folder, and to the root
        (
            "A/B/Mv",
            "A/Mv",
            "[s](Sib) [u](../Up) [r](/B/Sib)",
            "[s](/A/B/Sib) [u](/A/Up) [r](/B/Sib)",
        ),
        (
            "A/Mv/Kid",
            "Mv/Kid",
            "[s](Sib) [u](../Up) [t](../../Top)",
            "[s](Sib) [u](/A/Up) [t](../../Top)",
        ),
        # a page whose case alone changes: its links still name their pages
        ("a/mv", "A/Mv", "[s](Sib) [s2](../a/Sib)", "[s](Sib) [s2](../a/Sib)"),
        # what names no page, or another site, is read from where it was written
        (
            "Mv",
            "Deep/Mv2",
            "[h](.) [x](https://x.org/a) [y](#part) [z](?q=1)",
            "[h](/) [x](https://x.org/a) [y](#part) [z](?q=1)",
        ),
        # odd names stay odd: percent-encoded from the root
        (
            "Mv",
            "D/Mv2",
            "[p](Per%25cent) [q](a%3Ab) [w](Why%3F)",
            "[p](/Per%25cent) [q](/a%3Ab) [w](/Why%3F)",
        ),
        # an image of a page's name is no link: left as written
        ("Mv", "D/Mv2", "![i](Other) ![j](pic.png)", "![i](Other) ![j](/pic.png)"),
    ],
)
def test_a_moved_page_s_links_stay_unless_they_would_name_something_else(
    old_path, new_path, content, moved
):
    old, new = old_path.split("/Kid")[0], new_path.split("/Kid")[0]
    assert move_page_text(RULES, old_path, new_path, content, old, new) == moved


def _moved_file(file: str, old: str, new: str) -> str:
    """A page's file, or a files' folder (as on disk), after `old` is renamed to `new`."""
    old_dir, new_dir = RULES.attachment_dir(old), RULES.attachment_dir(new)
    if file in (RULES.filename(old), old_dir):
        return RULES.filename(new) if file.endswith(".md") else new_dir
    return new_dir + file[len(old_dir) :] if file.startswith(old_dir + "/") else file


def _moved_links(path: str, content: str, old: str, new: str) -> tuple[set[str], set[str]]:
    found = page_links(RULES, path, content)
    pages = {_moved_file(RULES.filename(page), old, new) for page in found.pages}
    return pages, {_moved_file(folder, old, new) for folder in found.folders}


def _links(path: str, content: str) -> tuple[set[str], set[str]]:
    found = page_links(RULES, path, content)
    return {RULES.filename(page) for page in found.pages}, set(found.folders)


# Relative targets from a moved page: siblings that move with it, pages it leaves, itself.
_MOVE_TARGETS = _NAMING + _LOOKALIKE + ["Sib", "../Sib", "../T/Kid", "Kid#a", "../../Top"]
_MOVE_TARGETS += ["pic.png", "../pic.png", "./x/../Sib", ".", "..", "/T/x/../../Sib"]
# (old, new, a page moving with it: the page itself or a subpage)
_MOVES = st.tuples(
    st.sampled_from([("T", "New"), ("T", "Deep/Er/New"), ("a/b/T", "New"), ("a/b/T", "a/New")]),
    st.sampled_from(["", "/Kid", "/x/Kid"]),
).map(lambda move: (*move[0], move[0][0] + move[1], move[0][1] + move[1]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_texts(_MOVE_TARGETS), _MOVES)
def test_a_moved_page_links_to_what_it_linked_to_moved(content, move):
    """After the move, page_links of the new text from the new path are the old ones moved."""
    old, new, old_path, new_path = move
    moved = move_page_text(RULES, old_path, new_path, content, old, new)
    assert _links(new_path, moved) == _moved_links(old_path, content, old, new)
    assert _between_links(moved) == _between_links(content)  # code and prose as written


@settings(max_examples=200, deadline=None)
@given(_texts(_MOVE_TARGETS), _LINKERS)
def test_a_page_that_does_not_move_is_only_renamed(content, linker):
    assert move_page_text(RULES, linker, linker, content, OLD, NEW) == (
        rewrite_links(RULES, linker, content, OLD, NEW)
    )


@pytest.mark.parametrize(
    ("content", "rewritten"),
    [
        # Review 32: `/Tgt/../Tgt` (which a browser reads as /Tgt) became `/New/../Tgt`.
        ("[t](/T/../T)", "[t](/New)"),
        ("[t](/x/../T/./Sub#a)", "[t](/New/Sub#a)"),
        ("[[T/../T]] [[x|./T]]", "[[New]] [[x|New]]"),
        ("![p](/T/x/../pic.png)", "![p](/New/pic.png)"),
        ("[t](/T/../Tee) [u](/T/..)", None),
        # Otterwiki reads no image size (`=100x`): the text is no image, and stays.
        ("![o](/T/pic.png =100x)", None),
        ("![o](/T/pic.png =100x200) [l](/T =x50)", None),
    ],
)
def test_a_target_is_read_as_a_browser_reads_it(content, rewritten):
    assert rewrite_links(RULES, "linker", content, OLD, NEW) == (rewritten or content)
    assert _names_old(content, "linker") == (rewritten is not None)


def test_an_angle_bracketed_target_with_spaces_is_renamed():
    """`[t](<Target Page>)` links to `Target Page` (review 33: a rename left it broken)."""
    content = "[t](<Target Page>) [u](<Target Page/Sub#a> 'x') `[c](<Target Page>)`"
    rewritten = rewrite_links(RULES, "linker", content, "Target Page", "New Page")
    assert rewritten == ("[t](</New%20Page>) [u](</New%20Page/Sub#a> 'x') `[c](<Target Page>)`")


@pytest.mark.parametrize(
    ("content", "pages"),
    [
        ("[t](/Target/../Target) [[Target/./Sub]]", {"target", "target/sub"}),
        ("[u](/Target/x/../Two)", {"target/two"}),
        # a wiki link's href starts at the root: `[[../Target]]` is `/../Target`, /Target
        ("[[../Target]] [[a/../../Target/Sub]]", {"target", "target/sub"}),
        ("![o](/Target/pic.png =100x) [l](/Target =x50)", set()),
        # in angle brackets a target may hold spaces and parentheses (review 33)
        ("[t](<Target Page>) [u](</Target/Sub (x)> 'title')", {"target page", "target/sub (x)"}),
        ("[v](<Target\nPage>) [w](<Target)", set()),
    ],
)
def test_dot_segments_and_image_sizes_are_read_as_rendered(render, content, pages):  # noqa: F811
    """What Otterwiki renders (tests/wiki/test_links_as_rendered.py): a link's dot segments
    are the browser's to remove; `=100x` after a target is text, no image or link."""
    html = render(content)
    assert _rendered_targets(html) == pages
    assert {page.lower() for page in page_links(RULES, "linker", content).pages} == pages
    assert "=100x" not in content or "<img" not in html
