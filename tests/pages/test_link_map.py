"""The kept map of links (app/pages/link_map.py): each page version is read once, a call
reads for a bounded time and the next goes on, and a map for other rules is never used."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing

import pytest

from app.core.errors import PayloadTooLarge
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
    original = link_map.LinkMap._links_of
    monkeypatch.setattr(
        link_map.LinkMap,
        "_links_of",
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
    original = link_map.LinkMap._links_of

    def slow(self, *args):
        time.sleep(0.05)
        return original(self, *args)

    monkeypatch.setattr(link_map.LinkMap, "_links_of", slow)
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


def kept_rows(pages) -> dict[str, list]:
    with closing(sqlite3.connect(link_map_path(pages))) as db:
        return {key: json.loads(found) for key, found in db.execute("SELECT * FROM links")}


def test_a_map_for_other_rules_or_torn_is_read_again(pages, reads):
    pages.write("a", "[[B]]", ALICE)
    assert orphans(pages) == ["A"]
    path = link_map_path(pages)
    with closing(sqlite3.connect(path)) as db:
        (rules,) = db.execute("SELECT value FROM meta WHERE key = 'rules'").fetchone()
    assert json.loads(rules) == [link_map.FORMAT, False, ""]
    reads.clear()
    retained = link_map.LinkMap(path, pages.storage.repo, PathRules(retain_case=True), "")
    assert retained.outgoing()["a"] == ("B",) and len(reads) == 2  # names as on disk
    for torn in (b"", b"{", b"SQLite format 3\x00" + b"\xff" * 200, b"[]" * 3000):
        path.write_bytes(torn)
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        reads.clear()
        assert orphans(pages) == ["A"] and len(reads) == 2, torn
        reads.clear()
        assert orphans(pages) == ["A"] and reads == [], torn  # kept again


def test_a_map_with_unreadable_rows_reads_the_pages_again(pages, reads):
    pages.write("a", "[[B]]", ALICE)
    orphans(pages)
    with closing(sqlite3.connect(link_map_path(pages))) as db, db:
        db.execute("UPDATE links SET found = '{'")
    reads.clear()
    assert orphans(pages) == ["A"] and len(reads) == 2
    assert orphans(pages) == ["A"] and len(reads) == 2  # written over


def test_the_map_holds_only_what_head_holds(pages):
    for n in range(5):
        pages.write(f"p{n}", f"[[x{n}]]", ALICE)
    orphans(pages)
    for n in range(4):
        pages.delete(f"p{n}", ALICE)
    orphans(pages)
    assert len(kept_rows(pages)) == 2  # Home and p4


def test_one_text_under_many_names_is_kept_and_read_once(pages, reads, repo):
    """Twenty-sixth review: the map was keyed by blob and folder, so one page of 10,000
    distinct links pushed under 1,500 names made a 79 MB map that every call loaded and
    rewrote whole. A page without relative links is one row however many names it has; a
    page with them is one row per folder it is in."""
    absolute = " ".join(f"[[L{n}]] [x](/M{n})" for n in range(300))
    relative = "[r](Sibling) [[Abs]]"
    files = {f"d{n % 7}/copy{n}.md": absolute for n in range(60)}
    files |= {f"e{n % 3}/rel{n}.md": relative for n in range(30)}
    for name, text in files.items():
        (repo / name).parent.mkdir(exist_ok=True)
        (repo / name).write_text(text)
    pages.storage.repo.git.add(A=True)
    pages.storage.repo.git.commit(m="many names", author="A <a@example.org>")
    found = pagesearch.links(pages, "d0/copy0")
    assert len(found["outgoing"]) == 600 and found["backlinks"] == []
    rows = kept_rows(pages)
    assert len(rows) == 1 + 1 + 3  # Home, the absolute text, the relative one in 3 folders
    assert len(reads) == 1 + 1 + 3
    assert pagesearch.links(pages, "e1/rel1")["outgoing"] == ["E1/Sibling", "Abs"]  # as written
    pages.write("e2/sibling", "x", ALICE)
    backlinks = pagesearch.links(pages, "e2/sibling")
    assert backlinks["backlinks"] == sorted(f"E2/Rel{n}" for n in range(2, 30, 3))
    lonely = orphans(pages)
    assert "D3/Copy3" in lonely and "L5" not in lonely


def test_too_many_links_to_hold_is_a_clear_refusal(pages, monkeypatch):
    pages.write("a", " ".join(f"[[P{n}]]" for n in range(30)), ALICE)
    monkeypatch.setattr(link_map, "MAX_MAP_LINKS", 20)
    with pytest.raises(PayloadTooLarge, match="more than 20 links"):
        orphans(pages)


def test_a_wiki_without_commits_has_no_links(tmp_path):
    import git

    repo = git.Repo.init(tmp_path / "empty")
    assert link_map.LinkMap(tmp_path / "none.db", repo, PathRules(), "").outgoing() == {}
