"""A per-wiki write lock shared by every process on the host (web, page API and MCP edits)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from contextlib import contextmanager
from contextlib import nullcontext
from pathlib import Path

from app.core.errors import NotFound
from app.core.errors import Unavailable
from app.core.git_env import git_env

log = logging.getLogger(__name__)

# Seconds a write refused for a busy lock is told to wait before it tries again.
BUSY_RETRY = 2
# Beside write.lock while its holder writes; left when the holder died or failed mid-write.
UNFINISHED = "write.unfinished"
# Seconds after which git's index.lock in a wiki whose last write did not finish is stale.
STALE_INDEX_LOCK = 10.0


@contextmanager
def wiki_write_lock(
    wiki_dir: Path,
    timeout: float = 20.0,
    waiting: Callable[[], AbstractContextManager] | None = None,
):
    """Hold the wiki's exclusive write lock; raise Unavailable (503, Retry-After: BUSY_RETRY
    seconds) if it stays busy past `timeout` seconds: a temporary state, not a conflict of
    the write with the page (409 made editors and agents treat it as one); NotFound if the
    wiki was deleted while this waited.
    Yields the lock's file descriptor: a process that inherits it holds the lock too.

    When the lock is busy, the wait runs inside `waiting()` if given: a web request's place
    to wait (app.wiki.turns.Turn.waiting_for_write_lock), which may refuse the wait at once.

    flock is released by the kernel when the holder dies, so a killed worker never wedges a wiki.
    What a holder killed or failed mid-write left in the repository (files changed, staged or
    untracked, git's index.lock) is put back at HEAD when the lock is next taken: a rename
    killed by the worker timeout left its half staged, and the next unrelated write committed
    it under its own author and message (twenty-third review).
    """
    path = wiki_dir / "write.lock"  # beside repo/, never inside it (it would show up as a page)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        if not try_lock(fd):
            with waiting() if waiting is not None else nullcontext():
                deadline = time.monotonic() + timeout
                while not try_lock(fd):
                    if time.monotonic() >= deadline:
                        raise busy()
                    time.sleep(0.01)
        if not _still_at(path, fd):
            # Deleted while this one waited (its folder moved aside): a write went on into
            # the moved folder and answered 500 (twenty-third review).
            raise NotFound("this wiki was deleted meanwhile; nothing was written")
        unfinished = wiki_dir / UNFINISHED
        if unfinished.exists():
            _put_back_unfinished_write(wiki_dir / "repo")
        unfinished.touch()
        yield fd
        unfinished.unlink(missing_ok=True)  # not reached when the holder raised (or died)
    finally:
        os.close(fd)


def put_back_unfinished(wiki_dir: Path) -> None:
    """If a write under `wiki_dir`'s lock did not finish and nobody holds the lock now, put
    the repository back at HEAD at once: a reader saw the half of a killed rename until the
    next write came (twenty-fourth review). Costs one stat when all is well."""
    unfinished = wiki_dir / UNFINISHED
    if not unfinished.exists():
        return
    fd = os.open(wiki_dir / "write.lock", os.O_RDWR | os.O_CREAT, 0o640)
    try:
        if try_lock(fd) and unfinished.exists():  # else a writer holds it, and will
            _put_back_unfinished_write(wiki_dir / "repo")
            unfinished.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _still_at(path: Path, fd: int) -> bool:
    """Whether the open lock file `fd` is still the file at `path`."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _put_back_unfinished_write(repo: Path) -> None:
    log.warning("the last write to %s did not finish: its files are put back at HEAD", repo)
    put_back_at_head(repo)


def put_back_at_head(repo: Path) -> None:
    """Make the work tree `repo` HEAD's again after a write that failed or did not finish:
    git's index lock left by a killed git removed (only when older than STALE_INDEX_LOCK
    seconds), `git reset --hard`, `git clean -d --force` (a wiki's repository holds only
    what is committed). Failures are logged, as the write's own error is the one to report.
    Call under the wiki's write lock.

    Each step runs on its own: with the index locked the reset fails, and the clean, which
    needs no lock, still removes what the write left untracked. A write that failed between
    staging and committing left its change staged, and the next writer's commit took it in
    under that writer's name and message.
    """
    if not repo.is_dir():
        return
    # Left by a git killed with its worker; a git the worker started may outlive it for a
    # moment (the lock's descriptor is not inherited), so only an old one is removed.
    index_lock = repo / ".git" / "index.lock"
    with contextlib.suppress(FileNotFoundError):
        if time.time() - index_lock.stat().st_mtime > STALE_INDEX_LOCK:
            index_lock.unlink(missing_ok=True)
    for step in (("reset", "--hard", "--quiet", "HEAD"), ("clean", "-d", "--force", "--quiet")):
        done = subprocess.run(
            ["git", *step], cwd=repo, env=git_env(repo), capture_output=True, check=False
        )
        if done.returncode != 0:
            log.error("could not %s %s: %s", step[0], repo, done.stderr.decode(errors="replace"))


@contextmanager
def file_lock(path: Path):
    """Hold an exclusive flock on the file `path` (created if missing) for the block, waiting
    as long as it takes: for short setup steps that must not run twice at once across
    processes. The kernel releases it when the holder dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def one_of_slots(folder: Path, name: str, count: int):
    """Hold one of `count` slots named `name` in `folder` (files `{name}-{n}.lock`, shared by
    every process naming them) for the block, without waiting: yields True while one is held,
    or False at once when all are taken. The kernel lets a slot go when its holder dies; a
    process forked while one is held holds it too, until it ends."""
    folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    for n in range(count):
        fd = os.open(folder / f"{name}-{n}.lock", os.O_RDWR | os.O_CREAT, 0o640)
        try:
            if try_lock(fd):
                yield True
                return
        finally:
            os.close(fd)
    yield False


def busy() -> Unavailable:
    """The refusal of a write whose wiki's lock stays busy: 503, try again in BUSY_RETRY s."""
    return Unavailable(
        "the wiki is busy with another edit; try again in a moment", retry_after=BUSY_RETRY
    )


def try_lock(fd: int) -> bool:
    """Take an exclusive flock on the open file `fd` without waiting; whether it was taken."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
