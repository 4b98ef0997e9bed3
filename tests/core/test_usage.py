"""Usage figures measured from a real git repository (app/core/usage.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from app.core import usage
from app.core.wikis import create_wiki


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    return path


def commit(repo: Path, files: dict[str, bytes], message: str = "m") -> None:
    for name, data in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def test_counts_pages_and_the_bytes_of_every_file_at_head(repo):
    commit(
        repo,
        {
            "home.md": b"# Home\n",
            "a dir/ünïcode page.md": "é\n".encode(),
            'a dir/"quoted"\tname.md': b"x",
            "a dir/photo.png": bytes(1000),
            "notes.txt": b"not a page",
        },
    )
    measured = usage.measure(repo)
    assert measured.pages == 3
    assert measured.size_bytes == 7 + 3 + 1 + 1000 + 10
    assert measured.last_change_at == int(git(repo, "show", "-s", "--format=%ct", "HEAD"))


def test_history_and_the_work_tree_do_not_count(repo):
    commit(repo, {"home.md": bytes(5000)})
    commit(repo, {"home.md": b"short"})
    (repo / "uncommitted.md").write_bytes(bytes(100))
    assert usage.measure(repo) == usage.Usage(1, 5, usage.measure(repo).last_change_at)


def test_a_repo_without_commits_measures_zero(repo):
    assert usage.measure(repo) == usage.Usage(0, 0, None)


def test_not_a_repo_is_a_usage_error(tmp_path):
    with pytest.raises(usage.UsageError, match="git"):
        usage.measure(tmp_path)
    with pytest.raises(usage.UsageError):
        usage.measure(tmp_path / "missing")


def test_record_stores_the_figures_and_creating_a_wiki_records_them(settings, store, users):
    wiki = create_wiki(settings, store, "usage-one", users[0])
    starter = sum(p.stat().st_size for p in settings.repo_path("usage-one").glob("*.md"))
    assert (wiki.page_count, wiki.size_bytes) == (2, starter)  # Home and the Agent Guide
    assert wiki.last_change_at is not None
    commit(settings.repo_path("usage-one"), {"more.md": bytes(10), "file.bin": bytes(90)})
    recorded = usage.record(store, "usage-one", settings.repo_path("usage-one"))
    row = store.get_wiki("usage-one")
    assert (row.page_count, row.size_bytes) == (3, starter + 100)
    assert row.last_change_at == recorded.last_change_at
    assert row.as_dict()["last_change_at"] == recorded.last_change_at


def test_init_measures_wikis_never_measured(settings, store, users):
    """A wiki from before schema 0004 (no last change) gets its figures at the next init."""
    from sqlalchemy import update

    from app.core.platform import init_instance
    from app.core.schema import wikis

    create_wiki(settings, store, "usage-old", users[0])
    create_wiki(settings, store, "usage-lost", users[0])
    with store.engine.begin() as connection:
        connection.execute(update(wikis).values(page_count=0, size_bytes=0, last_change_at=None))
    (settings.repo_path("usage-lost") / ".git" / "HEAD").unlink()  # git cannot read it
    assert "measured the usage of 1 wiki(s): usage-old" in init_instance(settings)
    old, lost = store.get_wiki("usage-old"), store.get_wiki("usage-lost")
    assert old.page_count == 2 and old.size_bytes > 0 and old.last_change_at is not None
    assert (lost.page_count, lost.last_change_at) == (0, None)
    assert not any("measured" in line for line in init_instance(settings))


def test_a_folder_inside_another_repo_is_not_measured_as_that_repo(repo):
    commit(repo, {"home.md": b"outer"})
    inner = repo / "wikis" / "lost" / "repo"
    inner.mkdir(parents=True)
    with pytest.raises(usage.UsageError):
        usage.measure(inner)
