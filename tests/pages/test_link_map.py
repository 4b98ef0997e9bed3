"""The kept map of links (app/pages/link_map.py): each page version is read once, a call
reads for a bounded time and the next goes on, and a map for other rules is never used."""

from __future__ import annotations

import json
import time

import pytest

from app.core.errors import Unavailable
from app.pages import link_map
from app.pages import search as pagesearch
from app.pages.paths import PathRules
from tests.pages.conftest import ALICE
from tests.pages.test_storage import link_map_path


@pytest.fixture(autouse=True)
def kept(pages):
    """These pages keep their map where Settings.link_map_path would."""
    pages.link_map = link_map_path(pages)


@pytest.fixture
def reads(monkeypatch):
    """The files whose blobs the map reads, in order."""
    read = []
    original = link_map.LinkMap._read
    monkeypatch.setattr(
        link_map.LinkMap,
        "_read",
        lambda self, filename, *args: read.append(filename) or original(self, filename, *args),
    )
    return read


orphans = pagesearch.orphans


def test_each_page_version_is_read_once(pages, reads):
    for n in range(5):
        pages.write(f"p{n}", f"[[p{n + 1}]]", ALICE)
    assert orphans(pages) == ["P0"]
    assert sorted(reads) == ["home.md"] + [f"p{n}.md" for n in range(5)]
    reads.clear()
    assert orphans(pages) == ["P0"]
    links = pagesearch.links(pages, "p2")
    assert links["backlinks"] == ["P1"] and reads == []
    pages.write("p3", "no links now", ALICE)
    assert orphans(pages) == ["P0", "P4"] and reads == ["p3.md"]


def test_a_long_read_answers_503_and_the_next_call_goes_on(pages, reads, monkeypatch):
    """Twenty-fifth review: /links and /orphans read every page on every call (19 s on a
    wiki of 9,900 pages, then a worker killed). A call reads for FILL_SECONDS at most; what
    it read is kept, so each call goes further and every page is read once."""
    for n in range(12):
        pages.write(f"p{n}", f"[[p{n + 1}]]", ALICE)
    original = link_map.LinkMap._read

    def slow(self, *args):
        time.sleep(0.05)
        return original(self, *args)

    monkeypatch.setattr(link_map.LinkMap, "_read", slow)
    monkeypatch.setattr(link_map, "FILL_SECONDS", 0.12)
    refused = 0
    while True:
        try:
            found = orphans(pages)
            break
        except Unavailable as error:
            refused += 1
            assert error.retry_after == link_map.FILL_RETRY and "try again" in error.message
            assert refused < 20
    assert found == ["P0"] and refused >= 2


def test_a_map_for_other_rules_or_torn_is_read_again(pages, reads):
    pages.write("a", "[[B]]", ALICE)
    assert orphans(pages) == ["A"]
    path = link_map_path(pages)
    kept = json.loads(path.read_text())
    assert kept["rules"] == [link_map.FORMAT, False, ""]
    reads.clear()
    retained = link_map.LinkMap(path, pages.storage.repo, PathRules(retain_case=True), "")
    assert retained.outgoing()["a"] == ["B"] and len(reads) == 2  # names as on disk
    for torn in ("", "{", '{"rules": 1}', "[]", '{"rules": [1, false, ""], "pages": 3}'):
        path.write_text(torn)
        reads.clear()
        assert orphans(pages) == ["A"] and len(reads) == 2, torn


def test_the_map_holds_only_what_head_holds(pages):
    for n in range(5):
        pages.write(f"p{n}", f"[[x{n}]]", ALICE)
    orphans(pages)
    for n in range(4):
        pages.delete(f"p{n}", ALICE)
    orphans(pages)
    assert len(json.loads(link_map_path(pages).read_text())["pages"]) == 2  # Home and p4


def test_a_wiki_without_commits_has_no_links(tmp_path):
    import git

    repo = git.Repo.init(tmp_path / "empty")
    assert link_map.LinkMap(tmp_path / "none.json", repo, PathRules(), "").outgoing() == {}
