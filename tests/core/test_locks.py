"""The per-wiki write lock, across processes: a waiter's place is asked for only when the lock
is busy, and a refusal from it or a wait past the timeout is 503 with Retry-After."""

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

from app.core.errors import NotFound
from app.core.errors import Unavailable
from app.core.locks import BUSY_RETRY
from app.core.locks import put_back_unfinished
from app.core.locks import wiki_write_lock


@contextmanager
def held_elsewhere(wiki_dir, seconds: float):
    """The lock, held by another process for `seconds`."""
    code = (
        "import sys, time; from pathlib import Path; from app.core.locks import wiki_write_lock\n"
        "with wiki_write_lock(Path(sys.argv[1])):\n"
        "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(wiki_dir), str(seconds)], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline() == b"held\n"
        yield
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_a_free_lock_never_asks_for_a_place_to_wait(tmp_path):
    asked = []
    with wiki_write_lock(tmp_path, 1.0, lambda: asked.append(1)):
        pass
    assert asked == []


def test_a_busy_lock_is_waited_for_in_the_place_given(tmp_path):
    entered = []

    @contextmanager
    def place():
        entered.append("in")
        yield
        entered.append("out")

    with held_elsewhere(tmp_path, 0.5):
        with wiki_write_lock(tmp_path, 10.0, place):
            assert entered == ["in", "out"]  # left once the lock is ours


def test_a_refused_place_refuses_at_once_and_a_long_wait_is_503(tmp_path):
    def no_place():
        raise Unavailable("busy", retry_after=BUSY_RETRY)

    with held_elsewhere(tmp_path, 30):
        with pytest.raises(Unavailable):
            with wiki_write_lock(tmp_path, 20.0, no_place):
                pass
        started = time.monotonic()
        with pytest.raises(Unavailable) as refused:
            with wiki_write_lock(tmp_path, 0.3):
                pass
        assert time.monotonic() - started >= 0.3
    assert refused.value.status == 503 and refused.value.retry_after == BUSY_RETRY


def _git(repo, *args) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@x", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _repo_with(wiki_dir, files: dict[str, str]):
    """A wiki's repo (`wiki_dir`/repo) with one commit holding `files` (name -> text)."""
    repo = wiki_dir / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    for name, text in files.items():
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "start")
    return repo


@pytest.mark.parametrize("killed_by", [SystemExit, KeyboardInterrupt, RuntimeError])
def test_a_write_that_did_not_finish_is_put_back_at_head_before_the_next(tmp_path, killed_by):
    """Twenty-third review: a rename killed by the worker timeout (SystemExit) left its half
    staged (a backlink rewritten, the page moved), and the next unrelated write committed it
    under its own author and message. The next holder of the lock now finds the files as
    HEAD has them: nothing staged, changed or untracked, and no index.lock left by git."""
    repo = _repo_with(tmp_path, {"aaa.md": "see [[Target]]\n", "target.md": "t\n"})
    with pytest.raises(killed_by):
        with wiki_write_lock(tmp_path):
            (repo / "aaa.md").write_text("see [[Target2]]\n")
            _git(repo, "mv", "target.md", "target2.md")
            _git(repo, "add", "aaa.md")
            (repo / "stray.md").write_text("half\n")
            (repo / ".git" / "index.lock").write_text("")  # left by a git killed long ago
            os.utime(repo / ".git" / "index.lock", (time.time() - 60, time.time() - 60))
            raise killed_by()
    with wiki_write_lock(tmp_path):
        assert _git(repo, "status", "--porcelain") == ""
        assert (repo / "target.md").exists() and not (repo / "stray.md").exists()
    # A write that finished leaves nothing for the next holder to do.
    with wiki_write_lock(tmp_path):
        (repo / "new.md").write_text("n\n")
        _git(repo, "add", "new.md")
        _git(repo, "commit", "-q", "-m", "new")
    with wiki_write_lock(tmp_path):
        assert (repo / "new.md").exists() and _git(repo, "status", "--porcelain") == ""


def test_a_wiki_deleted_while_its_lock_was_waited_for_is_not_found(tmp_path):
    """Twenty-third review: a write that waited while its wiki was deleted wrote on into the
    folder moved aside and answered 500."""
    folder = tmp_path / "wiki"
    folder.mkdir()
    waiter = []

    def wait_and_write():
        try:
            with wiki_write_lock(folder, timeout=10):
                waiter.append("wrote")
        except NotFound as error:
            waiter.append(error.message)

    with wiki_write_lock(folder):
        thread = threading.Thread(target=wait_and_write)
        thread.start()
        time.sleep(0.2)  # it waits for the lock now
        folder.rename(tmp_path / ".deleted-wiki")
    thread.join(timeout=10)
    assert waiter == ["this wiki was deleted meanwhile; nothing was written"]


def test_a_reader_finds_a_killed_writes_half_put_back_at_once(tmp_path):
    """Twenty-fourth review: until the next write came, every reader saw the uncommitted half
    of a killed rename. The gateway puts it back when it finds the mark and the lock free;
    while a writer holds the lock, it leaves it to the writer."""
    repo = _repo_with(tmp_path, {"page.md": "committed\n"})
    with pytest.raises(SystemExit):
        with wiki_write_lock(tmp_path):
            (repo / "page.md").write_text("half\n")
            raise SystemExit(1)
    with wiki_write_lock(tmp_path):
        put_back_unfinished(tmp_path)  # the writer holding the lock puts back, not a reader
        assert (repo / "page.md").read_text() == "committed\n"
        (repo / "page.md").write_text("being written\n")
        put_back_unfinished(tmp_path)
        assert (repo / "page.md").read_text() == "being written\n"
        _git(repo, "commit", "-qam", "written")
    with pytest.raises(SystemExit):
        with wiki_write_lock(tmp_path):
            (repo / "page.md").write_text("half again\n")
            raise SystemExit(1)
    put_back_unfinished(tmp_path)
    assert (repo / "page.md").read_text() == "being written\n"
    assert not (tmp_path / "write.unfinished").exists()
