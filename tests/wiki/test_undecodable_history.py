"""History that is no UTF-8 shows, with U+FFFD in its place, on every view.

Fourteenth review: one commit with Latin-1 bytes in its author and message (pushed before the
push rules refused such commits, or imported) made the changelog, and the history, blame and
diffs of the page it touched, answer 500 for good; a text attachment in Latin-1 did the same
to the commit view of any commit that added it.
"""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest
from werkzeug.test import Client

from app.core.locks import wiki_write_lock
from app.core.wikis import create_wiki
from tests.wiki.instance import in_process

SLUG = "latin"
OWNER = ("did:plc:latin-owner", "latin.test")


def git(repo, *args: str, data: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=repo, input=data, capture_output=True, check=True)
    return done.stdout.decode().strip()


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    """A public wiki whose page `hello` was changed by a commit of Latin-1 author and message,
    and whose attachment `hello/lat.txt` is Latin-1 text; the two commits' ids."""
    made = in_process(tmp_path_factory.mktemp("latin"), [OWNER])
    store = made.platform.store
    create_wiki(made.settings, store, SLUG, OWNER[0], "Latin", public=True)
    repo = made.settings.repo_path(SLUG)
    with wiki_write_lock(made.settings.wiki_dir(SLUG)):
        (repo / "hello.md").write_text("# Hello\n")
        git(repo, "add", "hello.md")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "hello")
        (repo / "hello.md").write_text("# Hello\n\nzz\n")
        git(repo, "add", "hello.md")
        parent, tree = git(repo, "rev-parse", "HEAD"), git(repo, "write-tree")
        raw = (
            f"tree {tree}\nparent {parent}\n".encode()
            + b"author Ev\xe9 <e@x.org> 1796207715 +0000\n"
            + b"committer Ev\xe9 <e@x.org> 1796207715 +0000\n\nraw \xe9\xff message\n"
        )
        latin = git(repo, "hash-object", "-t", "commit", "-w", "--stdin", data=raw)
        git(repo, "update-ref", "HEAD", latin)
        (repo / "hello").mkdir()
        (repo / "hello" / "lat.txt").write_bytes(b"caf\xe9\n")
        git(repo, "add", "hello/lat.txt")
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "file")
        attached = git(repo, "rev-parse", "HEAD")
    yield SimpleNamespace(client=Client(made.app), parent=parent, latin=latin, attached=attached)
    made.app.tenancy.close()
    store.close()


@pytest.mark.parametrize(
    "path",
    [
        "/-/changelog",
        "/hello/history",
        "/hello/blame",
        "/hello/blame/{parent}",
        "/hello/diff/{parent}/{latin}",
        "/-/commit/{latin}",
        "/-/commit/{attached}",
        "/-/changelog/feed.rss",
        "/-/changelog/feed.atom",
        "/hello",
        "/api/v1/pages/hello/history",
        "/api/v1/changes",
    ],
)
def test_every_view_of_history_that_is_no_utf8_answers(wiki, path):
    url = path.format(parent=wiki.parent, latin=wiki.latin, attached=wiki.attached)
    answer = wiki.client.get(url, base_url=f"http://{SLUG}.localhost", buffered=True)
    if path == "/hello/blame":  # GitPython cannot read git's blame of such an author
        assert answer.status_code == 503 and "git blame" in answer.get_data(as_text=True)
        return
    assert answer.status_code == 200, (url, answer.status_code)
    text = answer.get_data(as_text=True)
    if path in ("/-/changelog", "/hello/history", "/-/commit/{latin}"):
        assert "Ev\ufffd" in text or "raw \ufffd" in text
    if path == "/-/commit/{attached}":
        assert "caf\ufffd" in text
