"""The page index's build (app.wiki.otterwiki.page_index.list_pages) against Otterwiki's own
`PageIndex.__init__`: the same index for any tree of pages and folders, whole or from a folder,
and in time linear in the pages where Otterwiki's searched every page for each page."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from app.core.wikis import create_wiki
from app.wiki.otterwiki.page_index import list_pages
from tests.wiki.instance import in_process

OWNER = ("did:plc:index-build", "index-build.test")
SLUG = "index-build"
# Names a folder or page may have: cased, spaced, dotted, one a prefix of another.
SEGMENTS = ["a", "ab", "A b", "c.d", "notes", "Notes 2", "z"]
BODIES = ["", "no heading\n", "# Title Case\n\ntext\n", "# First\n\n## Second\n\n### Third `x`\n"]


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    """(otterwiki.server module, the app, the wiki's row, its repository path)."""
    made = in_process(tmp_path_factory.mktemp("index-build"), [OWNER])
    create_wiki(made.settings, made.platform.store, SLUG, OWNER[0], public=True)
    yield (
        sys.modules["otterwiki.server"],
        made.app,
        made.platform.store.get_wiki(SLUG),
        made.settings.repo_path(SLUG),
    )
    made.app.tenancy.close()
    made.platform.store.close()


def _git(repo, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


def commit_tree(repo, files: dict[str, str]) -> None:
    """Make `files` ({path: text}) the whole tree of `repo`, committed."""
    _git(repo, "rm", "-r", "-q", "--ignore-unmatch", ".")
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "tree")


def both_indexes(wiki, path, display_page_path) -> tuple[dict, dict]:
    """The index's attributes as Otterwiki's own build and ours make them."""
    server, app, row, _ = wiki
    from otterwiki.pageindex import PageIndex

    otterwiki_init = PageIndex.__init__.__wrapped__
    with server.app.test_request_context("/-/index"):
        app.tenancy.activate(row)
        try:
            theirs, ours = PageIndex.__new__(PageIndex), PageIndex.__new__(PageIndex)
            otterwiki_init(theirs, path, display_page_path)
            list_pages(server, ours, path, display_page_path)
        finally:
            app.tenancy.deactivate()
    return vars(theirs), vars(ours)


_page = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map(lambda s: "/".join(s))
_trees = st.dictionaries(
    st.one_of(_page.map(lambda p: p + ".md"), _page.map(lambda p: p + ".png")),
    st.sampled_from(BODIES),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    files=_trees,
    path=st.one_of(st.none(), st.sampled_from(["a", "A b", "notes", "a/ab"])),
    display_page_path=st.booleans(),
)
def test_the_build_lists_what_otterwikis_lists(wiki, files, path, display_page_path):
    commit_tree(wiki[3], files)
    theirs, ours = both_indexes(wiki, path, display_page_path)
    assert ours == theirs


def test_a_page_with_pages_below_it_and_a_folder_without_a_page(wiki):
    files = {
        "projects.md": "# Projects\n\n## Plans\n",
        "projects/road map.md": "# Road Map\n",
        "archive/2025/old.md": "# Old\n",
        "lonely.md": "",
    }
    commit_tree(wiki[3], files)
    theirs, ours = both_indexes(wiki, None, False)
    assert ours == theirs
    entries = {entry.title: entry for group in ours["toc"].values() for entry in group}
    assert entries["Projects"].has_children and not entries["Lonely"].has_children
    assert entries["Archive"].has_children and entries["Archive"].toc == []


def test_the_bench_runs_end_to_end():
    """bench/page_index.py, on small wikis (a smoke run: the figures are for people to read)."""
    bench = Path(__file__).resolve().parents[2] / "bench" / "page_index.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--pages", "50", "120", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.findall(r"^ +\d+ pages: ours \d+\.\d+ s, Otterwiki's \d+\.\d+ s", done.stdout, re.M)
    assert len(re.findall(r" pages: ours ", done.stdout)) == 2
