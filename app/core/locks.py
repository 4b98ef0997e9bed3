"""A per-wiki write lock shared by every process on the host (web, page API and MCP edits)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from contextlib import contextmanager
from contextlib import nullcontext
from pathlib import Path

from app.core.errors import Unavailable

# Seconds a write refused for a busy lock is told to wait before it tries again.
BUSY_RETRY = 2


@contextmanager
def wiki_write_lock(
    wiki_dir: Path,
    timeout: float = 20.0,
    waiting: Callable[[], AbstractContextManager] | None = None,
):
    """Hold the wiki's exclusive write lock; raise Unavailable (503, Retry-After: BUSY_RETRY
    seconds) if it stays busy past `timeout` seconds: a temporary state, not a conflict of
    the write with the page (409 made editors and agents treat it as one).
    Yields the lock's file descriptor: a process that inherits it holds the lock too.

    When the lock is busy, the wait runs inside `waiting()` if given: a web request's place
    to wait (app.wiki.turns.Turn.waiting_for_write_lock), which may refuse the wait at once.

    flock is released by the kernel when the holder dies, so a killed worker never wedges a wiki.
    """
    path = wiki_dir / "write.lock"  # beside repo/, never inside it (it would show up as a page)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        if not _try_lock(fd):
            with waiting() if waiting is not None else nullcontext():
                deadline = time.monotonic() + timeout
                while not _try_lock(fd):
                    if time.monotonic() >= deadline:
                        raise busy()
                    time.sleep(0.01)
        yield fd
    finally:
        os.close(fd)


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


def busy() -> Unavailable:
    """The refusal of a write whose wiki's lock stays busy: 503, try again in BUSY_RETRY s."""
    return Unavailable(
        "the wiki is busy with another edit; try again in a moment", retry_after=BUSY_RETRY
    )


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
