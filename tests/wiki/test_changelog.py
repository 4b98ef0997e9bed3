"""The changelog and its feeds read one page of the log (app/wiki/otterwiki/changelog.py).

Otterwiki read every commit of the wiki for each changelog view and listed every commit in its
feeds: on a wiki with a million commits the view outlasted the worker timeout (a 500).
"""

from __future__ import annotations

import html
import re
import subprocess
from types import SimpleNamespace
from xml.etree import ElementTree

import pytest
from werkzeug.test import Client

from app.core.wikis import create_wiki
from app.wiki.otterwiki.changelog import FEED_ENTRIES
from app.wiki.otterwiki.changelog import MAX_PAGE_LINKS
from app.wiki.otterwiki.changelog import PAGE_SIZE
from app.wiki.otterwiki.changelog import page_links
from tests.wiki.instance import in_process

OWNER = ("did:plc:changelogowner", "changelog-owner.test")
WIKI = "changes"
FEEDS = "changes-feeds"  # a wiki with one hostile commit
HOSTILE_MESSAGE = '<img src=x onerror="alert(1)"> & <b>bold</b>'
HOSTILE_FILE = "<svg onload=alert(2)>.md"
ADDED = 1050  # commits on top of the wiki's own: 11 pages


def git(repo, *args: str, stdin: bytes | None = None) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, input=stdin, check=True, capture_output=True).stdout.decode()


def fast_import_commits(repo, count: int) -> None:
    """Add `count` commits to the repo's main branch, each changing page N.md."""
    parent = git(repo, "rev-parse", "HEAD").strip()
    stream = []
    for n in range(count):
        text = f"version {n}\n".encode()
        message = f"change number {n}\n".encode()
        stream += [
            b"commit refs/heads/main\n",
            f"committer T <t@t> {1700000000 + n} +0000\n".encode(),
            b"data %d\n%s" % (len(message), message),
            f"from {parent}\n".encode() if n == 0 else b"",
            b"M 100644 inline Page%d.md\ndata %d\n%s\n" % (n % 7, len(text), text),
        ]
    git(repo, "fast-import", "--quiet", stdin=b"".join(stream))
    git(repo, "reset", "-q", "--hard", "main")


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    instance = in_process(tmp_path_factory.mktemp("changelog"), users=[OWNER])
    store = instance.platform.store
    create_wiki(instance.settings, store, WIKI, OWNER[0])
    repo = instance.settings.repo_path(WIKI)
    fast_import_commits(repo, ADDED)
    token = store.create_token(WIKI, OWNER[0], "editor")[1]
    commits = git(repo, "rev-list", "HEAD").split()
    create_wiki(instance.settings, store, FEEDS, OWNER[0])
    feeds = instance.settings.repo_path(FEEDS)
    (feeds / HOSTILE_FILE).write_text("x\n")
    git(feeds, "add", "-A")
    git(feeds, "commit", "-q", "-m", HOSTILE_MESSAGE)
    feeds_token = store.create_token(FEEDS, OWNER[0], "editor")[1]
    yield SimpleNamespace(
        app=instance.app, token=token, repo=repo, commits=commits, feeds_token=feeds_token
    )
    instance.app.tenancy.close()
    store.close()


def get(world, path: str):
    return Client(world.app).get(
        path,
        base_url=f"http://{WIKI}.localhost",
        headers={"Authorization": f"Bearer {world.token}"},
        buffered=True,
    )


def shown_revisions(html: str) -> list[str]:
    """The commits listed in a changelog page, by the 6-character ids of their rows."""
    return re.findall(r'href="/-/commit/([0-9a-f]{6})"', html)


def page_link_targets(html: str) -> list[str]:
    return re.findall(r'href="/-/changelog/([0-9a-f]{6})"', html)


def test_the_first_page_lists_the_newest_commits(wiki):
    answer = get(wiki, "/-/changelog")
    assert answer.status_code == 200
    assert shown_revisions(answer.text) == [sha[:6] for sha in wiki.commits[:PAGE_SIZE]]
    assert "change number 1049" in answer.text


@pytest.mark.parametrize("page", [1, 5, 10])
def test_each_page_lists_its_own_commits_and_links_its_neighbours(wiki, page):
    start = page * PAGE_SIZE
    answer = get(wiki, f"/-/changelog/{wiki.commits[start][:6]}")
    assert answer.status_code == 200
    assert shown_revisions(answer.text) == [sha[:6] for sha in wiki.commits[start:][:PAGE_SIZE]]
    targets = page_link_targets(answer.text)
    assert wiki.commits[start - PAGE_SIZE][:6] in targets  # the previous page
    assert wiki.commits[0][:6] in targets and wiki.commits[1000][:6] in targets  # first, last


def test_a_page_that_starts_between_page_starts_skips_no_commit(wiki):
    """Fifth review: a changelog link made before new commits arrived starts between pages;
    its next page skipped the commits up to the next page start."""
    start = 150
    answer = get(wiki, f"/-/changelog/{wiki.commits[start][:6]}")
    assert shown_revisions(answer.text) == [sha[:6] for sha in wiki.commits[start:][:PAGE_SIZE]]
    targets = page_link_targets(answer.text)
    assert wiki.commits[start + PAGE_SIZE][:6] in targets  # next: right after the last shown
    assert wiki.commits[start - PAGE_SIZE][:6] in targets  # previous: right before the first
    assert re.search(r'class="btn btn-square active"[^>]*>2<', answer.text)  # holds commit 150


def test_the_last_page_ends_with_the_wikis_first_commit(wiki):
    answer = get(wiki, f"/-/changelog/{wiki.commits[1000][:6]}")
    assert shown_revisions(answer.text)[-1] == wiki.commits[-1][:6]


def test_a_commit_that_is_not_in_the_log_is_404(wiki):
    tree = git(wiki.repo, "rev-parse", "HEAD^{tree}").strip()
    stray = git(wiki.repo, "commit-tree", tree, "-m", "not on main", stdin=b"").strip()
    assert get(wiki, f"/-/changelog/{stray[:6]}").status_code == 404
    assert get(wiki, "/-/changelog/abcdef1234").status_code == 404


@pytest.mark.parametrize("feed", ["rss", "atom"])
def test_the_feeds_carry_the_newest_commits_only(wiki, feed):
    answer = get(wiki, f"/-/changelog/feed.{feed}")
    assert answer.status_code == 200
    entries = re.findall(r"change number (\d+)", answer.text)
    newest = [str(ADDED - 1 - n) for n in range(FEED_ENTRIES)]
    assert sorted(set(entries), key=int, reverse=True) == newest


def test_rss_items_carry_commit_messages_and_file_names_as_escaped_text(wiki):
    """RSS readers take an item's title and description as HTML: both are escaped once more
    than the XML needs, so the reader shows the text and runs none of it."""
    answer = Client(wiki.app).get(
        "/-/changelog/feed.rss",
        base_url=f"http://{FEEDS}.localhost",
        headers={"Authorization": f"Bearer {wiki.feeds_token}"},
        buffered=True,
    )
    assert answer.status_code == 200
    items = ElementTree.fromstring(answer.data).findall("channel/item")
    item = next(item for item in items if "alert(1)" in item.findtext("description"))
    assert item.findtext("description") == html.escape(HOSTILE_MESSAGE)
    assert "&lt;svg onload=alert(2)&gt;" in item.findtext("title").lower()  # the page's name
    assert "<" not in item.findtext("description") + item.findtext("title")


def test_atom_entries_keep_them_as_typed_text(wiki):
    answer = Client(wiki.app).get(
        "/-/changelog/feed.atom",
        base_url=f"http://{FEEDS}.localhost",
        headers={"Authorization": f"Bearer {wiki.feeds_token}"},
        buffered=True,
    )
    atom = "{http://www.w3.org/2005/Atom}"
    entries = ElementTree.fromstring(answer.data).findall(f"{atom}entry")
    content = next(e.find(f"{atom}content") for e in entries if "(2)" in e.findtext(f"{atom}title"))
    assert content.text == HOSTILE_MESSAGE and content.get("type", "text") == "text"


def test_page_links_are_a_window_around_the_active_page():
    starts = [f"{n:06x}" for n in range(20)]
    links, ends = page_links(starts, 10)
    assert len(links) == MAX_PAGE_LINKS
    assert links[0] == {"dummy": True} and links[-1] == {"dummy": True}
    assert [link["i"] for link in links[1:-1]] == [8, 9, 10, 11, 12, 13]
    assert [link["i"] for link in links if link.get("active")] == [11]
    assert ends == {
        "first_page": starts[0],
        "last_page": starts[-1],
        "previous_page": starts[9],
        "next_page": starts[11],
    }
    links, _ = page_links(starts, 0)
    assert [link.get("i") for link in links] == [1, 2, 3, 4, 5, 6, 7, None]
    links, _ = page_links(starts, 19)
    assert [link.get("i") for link in links] == [None, 14, 15, 16, 17, 18, 19, 20]
    links, ends = page_links(starts[:3], 2)
    assert [link["i"] for link in links] == [1, 2, 3] and ends["next_page"] is None
