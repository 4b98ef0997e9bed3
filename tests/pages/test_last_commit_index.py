"""Each file's last commit on a long history: kept on disk, read forward, built when a walk runs
out of time; with real git repositories made by git fast-import."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from app.pages import last_commit_index
from app.pages.last_commit_index import INDEX
from app.pages.last_commit_index import last_commits
from app.pages.last_commit_index import walk


def make_history(
    repo: Path, commits: int, start: int = 0, new: bool = True, author: str = "A"
) -> None:
    """Commit `commits` changes with git fast-import: commit 0 (of a new repository) adds
    old.md, every other one changes busy.md; `start` numbers them on from an existing one.
    `author`: the authors' name, any bytes but NUL, newline, < and >."""
    if new:
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    stream = []
    for n in range(start, start + commits):
        name, text = ("old.md", "old\n") if n == 0 else ("busy.md", f"version {n}\n")
        stamp = f"{author} <a@x> {1700000000 + n} +0000"
        parent = "from refs/heads/main^0\n" if n == start and not new else ""
        stream.append(
            f"commit refs/heads/main\nauthor {stamp}\ncommitter {stamp}\ndata 1\nc\n{parent}"
            f"M 100644 inline {name}\ndata {len(text.encode())}\n{text}\n"
        )
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=repo, input="".join(stream).encode(), check=True
    )
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=repo, check=True)


def head(repo: Path) -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    return out.stdout.strip()


def whole(repo: Path) -> dict:
    found, ended, _ = walk(repo, "HEAD")
    assert ended
    return found


@pytest.fixture
def long_history(tmp_path, monkeypatch):
    """A repository of 60 commits, counted as long."""
    monkeypatch.setattr(last_commit_index, "INDEX_MIN_COMMITS", 50)
    repo = tmp_path / "repo"
    make_history(repo, 60)
    return repo


def test_a_long_history_read_whole_is_kept_and_read_forward(long_history, monkeypatch):
    """Third review: a page untouched since the first of a million commits made every page
    list walk the whole log (47 s). Read whole once, it is kept; later only new commits are
    read."""
    repo = long_history
    assert last_commits(repo, head(repo), {"old.md"})["old.md"] == whole(repo)["old.md"]
    assert (repo / INDEX).is_file()
    make_history(repo, 3, start=60, new=False)
    read = []
    original = last_commit_index.walk

    def spy(repo, revisions, *args, **options):
        read.append(revisions)
        return original(repo, revisions, *args, **options)

    monkeypatch.setattr(last_commit_index, "walk", spy)
    answered = last_commits(repo, head(repo), {"old.md", "busy.md"})
    assert answered == {name: whole(repo)[name] for name in ("old.md", "busy.md")}
    assert len(read) == 1 and read[0].endswith(f"..{head(repo)}")  # only the new commits
    assert last_commit_index._load(repo)[0] == head(repo)  # the index moved to HEAD
    assert last_commits(repo, head(repo), under="") == whole(repo)
    assert len(read) == 1  # at HEAD: no git run at all


def test_a_walk_out_of_time_answers_what_it_found_and_builds_the_index(long_history, monkeypatch):
    repo = long_history
    monkeypatch.setattr(last_commit_index, "WALK_SECONDS", 0.0)
    partial = last_commits(repo, head(repo), {"old.md", "busy.md"})
    assert "old.md" not in partial  # not reached in time: undated for now
    deadline = time.monotonic() + 30
    while not (repo / INDEX).is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert last_commit_index._load(repo)[0] == head(repo)  # built apart, from the whole log
    assert last_commits(repo, head(repo), {"old.md", "busy.md"}) == {
        name: whole(repo)[name] for name in ("old.md", "busy.md")
    }


def test_an_index_of_another_history_is_not_used(long_history, tmp_path):
    repo = long_history
    other = tmp_path / "other"
    make_history(other, 55)
    last_commits(other, head(other))  # indexes the other history
    (repo / INDEX).write_bytes((other / INDEX).read_bytes())
    assert last_commits(repo, head(repo), {"old.md"})["old.md"] == whole(repo)["old.md"]
    assert last_commit_index._load(repo)[0] == head(repo)  # walked afresh, kept


@pytest.mark.parametrize(
    "content", [b"", b"{", b"[]", b'{"head": 1, "files": {}}', b'{"head": "x"}', b"\xff\xfe"]
)
def test_a_broken_index_is_read_as_none(long_history, content):
    repo = long_history
    (repo / INDEX).write_bytes(content)
    assert last_commits(repo, head(repo), {"old.md"})["old.md"] == whole(repo)["old.md"]


def test_a_short_history_keeps_no_index(tmp_path):
    repo = tmp_path / "repo"
    make_history(repo, 20)
    assert last_commits(repo, head(repo))["old.md"] == whole(repo)["old.md"]
    assert not (repo / INDEX).exists()


@pytest.mark.parametrize(
    "author", ["Eve\x02a\x02b\x02c\x02d", "Eve\x02NOT-A-DATE", "Eve\x01x\x02y"]
)
def test_an_author_name_never_shifts_or_forges_a_date(tmp_path, monkeypatch, author):
    """Eighth review: an author name with \x02 made every page list answer 500, or carried
    a date of its choosing; \x01 could make up commits. Nothing a committer chose is read."""
    monkeypatch.setattr(last_commit_index, "INDEX_MIN_COMMITS", 10)
    repo = tmp_path / "repo"
    make_history(repo, 12, author=author)
    dates = subprocess.run(
        ["git", "log", "-1", "--format=%H %aI", "--", "busy.md"],
        cwd=repo,
        capture_output=True,
        text=True,
    ).stdout.split()
    found = last_commits(repo, head(repo), {"busy.md", "old.md"})
    assert found["busy.md"] == tuple(dates)
    assert set(found) == {"busy.md", "old.md"}
    assert last_commit_index._load(repo)[1]["busy.md"] == tuple(dates)  # kept as read


def test_the_builder_never_runs_code_from_the_wikis_files(long_history, tmp_path):
    """Eighth review: the builder ran `python -m` in the wiki's work tree, so a file
    app/__init__.py there (an attachment of a page "app") ran as the service's user."""
    repo = long_history
    marker = tmp_path / "ran"
    planted = f"open({str(marker)!r}, 'w').write('pwned')\n"
    for name in ("app/__init__.py", "app/pages/__init__.py", "app/pages/last_commit_index.py"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(planted)
    assert last_commit_index.start_build(repo)
    deadline = time.monotonic() + 30
    while not (repo / INDEX).is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (repo / INDEX).is_file() and not marker.exists()


def test_a_page_view_reads_a_files_last_commit_from_the_index_alone(tmp_path, monkeypatch):
    """Review 42: a page view asked git for each file's last commit, reading a long history
    back to it (6.8 s at 77,000 commits). `indexed` answers from the index (moved forward to
    HEAD) and never walks the whole log: without an index it answers None."""
    monkeypatch.setattr(last_commit_index, "INDEX_MIN_COMMITS", 10)
    repo = tmp_path / "repo"
    make_history(repo, 12)
    assert last_commit_index.indexed(repo, head(repo)) is None  # no index yet
    found = last_commits(repo, head(repo))  # reads the whole log: keeps it as the index
    assert last_commit_index.indexed(repo, head(repo)) == found


def test_a_page_views_last_commits_come_from_the_index_read_once(tmp_path, monkeypatch):
    """Review 45: each file a view asked for read and parsed the whole index again (45 ms for
    20,000 files, per attachment). A wiki's LastCommits reads it once per HEAD, and takes its
    commit where the file there is the file at HEAD."""
    import git

    from app.wiki.otterwiki.storage import LastCommits

    monkeypatch.setattr(last_commit_index, "INDEX_MIN_COMMITS", 10)
    repo = tmp_path / "repo"
    make_history(repo, 12)
    found = last_commits(repo, head(repo))  # kept as the index
    reads = []
    monkeypatch.setattr(
        last_commit_index, "indexed", lambda *a: reads.append(a) or found, raising=True
    )
    memory = LastCommits(repo=git.Repo(repo))
    for name in ("busy.md", "old.md", "busy.md"):
        assert memory.of(name, head(repo)).hexsha == found[name][0]
    assert len(reads) == 1


@pytest.mark.parametrize("chunk", [1, 7, 4096, last_commit_index._CHUNK])
def test_a_commit_naming_many_files_is_read_whole_across_chunks(tmp_path, monkeypatch, chunk):
    """Review 54: each chunk of git's output was added to the unfinished record and the whole
    split again, quadratic in a record's size (a pushed commit may name 200,000 files). Each
    record is now joined once; every file keeps its own newest commit whatever the chunks."""
    repo = tmp_path / "repo"
    make_history(repo, 3)
    names = [f"folder {n // 100}/a page named at length {n}.md" for n in range(2_000)]
    stamp = "A <a@x> 1800000000 +0000"
    files = "".join(f'M 100644 inline "{name}"\ndata 2\nx\n' for name in names)
    stream = (
        f"commit refs/heads/main\nauthor {stamp}\ncommitter {stamp}\ndata 1\nc\n"
        f"from refs/heads/main^0\n{files}"
    )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=stream.encode(), check=True)
    monkeypatch.setattr(last_commit_index, "_CHUNK", chunk)
    found, ended, commits = walk(repo, "main")
    newest = subprocess.run(["git", "rev-parse", "main"], cwd=repo, capture_output=True, text=True)
    first = subprocess.run(
        ["git", "rev-list", "--max-parents=0", "main"], cwd=repo, capture_output=True, text=True
    )
    assert (ended, commits, len(found)) == (True, 4, 2_002)
    assert {found[name][0] for name in names} == {newest.stdout.strip()}
    assert found["old.md"][0] == first.stdout.strip()
