"""Otterwiki's link tools from the UI, answered from the link map (app.wiki.otterwiki.link_tools):
the rename's "Update backlinks" and the housekeeping task "broken WikiLinks"."""

import re

import pytest

from tests.wiki.test_search import owner  # noqa: F401 (a fixture)
from tests.wiki.test_search import world  # noqa: F401 (a fixture)


def rename(owner, old, new):  # noqa: F811
    return owner.form_post(
        "alpha",
        f"/{old}/rename",
        f"/{old}/rename",
        {"new_pagename": new, "update_backlinks": "y", "message": ""},
    )


def housekeeping(visitor, slug="alpha"):
    """The broken-links task's answer, posted as the housekeeping page posts it."""
    page = visitor.open(slug, "/-/housekeeping").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return visitor.open(
        slug,
        "/-/housekeeping",
        method="POST",
        data={"task": "brokenwikilinks", "csrf_token": token},
    )


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


def test_a_rename_from_the_ui_changes_links_and_never_code(world, owner):  # noqa: F811
    """Thirty-first review: the UI rename ran Otterwiki's own rewrite, which changed the name
    inside fenced blocks and code spans (the page API's rename did not). Now both rewrite
    with app.pages.links: every kind of link moves, code stays as written."""
    owner.save("alpha", "Uitarget", "x")
    owner.save("alpha", "Uitarget/Sub", "y")
    text = (
        "```markdown\nSee [[Uitarget]]\n```\n\n"
        "`[[Uitarget]]` and `[x](/Uitarget)`\n\n"
        "    [[Uitarget]] indented code\n\n"
        "Real: [[Uitarget]], [[Label|Uitarget/Sub]], [m](/Uitarget), [r][ref]\n\n"
        "[ref]: /Uitarget/Sub\n"
    )
    owner.save("alpha", "Uicode", text)
    response = rename(owner, "Uitarget", "Uimoved")
    assert response.status_code in (200, 302), response.get_data(as_text=True)[-500:]
    after = (world.settings.repo_path("alpha") / "uicode.md").read_text()
    expected = text.replace(
        "Real: [[Uitarget]], [[Label|Uitarget/Sub]], [m](/Uitarget)", ""
    ).replace("[ref]: /Uitarget/Sub", "")
    assert (
        after.replace("Real: [[Uimoved]], [[Label|Uimoved/Sub]], [m](/Uimoved)", "").replace(
            "[ref]: /Uimoved/Sub", ""
        )
        == expected
    ), after
    assert (world.settings.repo_path("alpha") / "uimoved" / "sub.md").exists()


def test_a_rename_from_the_ui_reads_only_the_pages_that_link(world, owner, monkeypatch):  # noqa: F811
    """Otterwiki read every page on every rename (7 s on 6,000 pages); the link map names
    the pages to read."""
    from otterwiki.gitstorage import GitStorage

    for n in range(20):
        owner.save("alpha", f"Bystander/{n}", f"nothing to do with it {n}\n")
    owner.save("alpha", "Lonely", "x")
    owner.save("alpha", "Fan", "[[Lonely]]")
    rename(owner, "Lonely", "Lonely Moved")  # fills the map
    owner.save("alpha", "Alone", "x")
    read = []
    load = GitStorage.load
    monkeypatch.setattr(
        GitStorage,
        "load",
        # whole pages only: the rename form's sidebar reads each page's first heading
        lambda self, name, *a, **k: (
            (k.get("size", -1) < 0 and read.append(name)) or load(self, name, *a, **k)
        ),
    )
    response = rename(owner, "Alone", "Alone Moved")
    assert response.status_code in (200, 302)
    assert not [name for name in read if name.startswith("bystander/")], read


@pytest.mark.parametrize(
    "text",
    [
        "[[" * 20_000,  # thirty-first review: 64 s in Otterwiki's pattern, a worker killed
        "`" * 1 + "".join("`" * n + "x" for n in range(1, 400)),  # backtick runs of every length
        "[x](/" * 40_000,
    ],
    ids=["brackets", "backticks", "links"],
)
def test_broken_links_housekeeping_answers_pathological_pages(world, owner, text):  # noqa: F811
    owner.save("alpha", "Pathological", text)
    answer = housekeeping(owner)
    assert answer.status_code == 200, answer.status_code
    assert "broken" in answer.get_data(as_text=True).lower()


def test_broken_links_housekeeping_lists_missing_pages_outside_code(world, owner):  # noqa: F811
    owner.save("alpha", "Exists", "x")
    owner.save("alpha", "Folder/Inside", "x")
    owner.save(
        "alpha",
        "Has Broken",
        "[[Exists]] [[Nowhere Page]] [md](/Missing%20Md) [[Folder]]\n\n"
        "```\n[[In Code]]\n```\n`[[Span Code]]`\n",
    )
    owner.save("alpha", "Also Broken", "[[Nowhere Page]]")
    answer = housekeeping(owner)
    assert answer.status_code == 200, answer.status_code
    html = answer.get_data(as_text=True)
    listed = html[html.index("Pages with broken links") :]
    assert "Has Broken" in listed or "has broken" in listed.lower()
    for missing in ("Nowhere Page", "Missing Md"):
        assert missing.lower() in listed.lower(), missing
    for fine in ("In Code", "Span Code", ">Exists<", ">Folder<"):
        assert fine.lower() not in listed.lower(), fine
    wanted = listed[listed.index("Most wanted") :]
    row = wanted[wanted.lower().index("nowhere page") :]
    assert re.search(r">\s*2\s*<", row[: row.index("</tr>")]), row[:800]  # two pages want it


def test_broken_links_housekeeping_needs_write(world):  # noqa: F811
    """A reader of a public wiki sees the housekeeping form (Otterwiki's), never a task's
    answer."""
    from tests.wiki.test_search import OTHER
    from tests.wiki.test_search import Visitor

    answer = housekeeping(Visitor(world, OTHER), "pub")
    assert answer.status_code == 403, answer.status_code


def test_broken_links_housekeeping_shows_a_bounded_list(world, owner, monkeypatch):  # noqa: F811
    """Thirty-second review: every (page, missing page) pair was listed, 44 MB of HTML for 8
    pages of distinct missing links. Now SHOWN pages, wanted pages and names in each list,
    and a notice saying so."""
    from app.wiki.otterwiki import link_tools

    monkeypatch.setattr(link_tools, "SHOWN", 3)
    for n in range(5):
        owner.save("alpha", f"Lister/{n}", " ".join(f"[[Gone {n} {m}]]" for m in range(6)))
    answer = housekeeping(owner)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "Shown: the 3 pages with the most broken links" in html
    listed = html[html.index("Pages with broken links") : html.index("Most wanted")]
    assert len(re.findall(r"Gone \d \d", listed)) <= 3 * 3
    wanted = html[html.index("Most wanted") :]
    assert len(set(re.findall(r">Gone \d \d<", wanted))) <= 3
