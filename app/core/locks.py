"""A per-wiki write lock shared by every process on the host (web, page API and MCP edits)."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

from app.core.errors import Unavailable

# Seconds a write refused for a busy lock is told to wait before it tries again.
BUSY_RETRY = 2


@contextmanager
def wiki_write_lock(wiki_dir: Path, timeout: float = 20.0, one_waiter: bool = False):
    """Hold the wiki's exclusive write lock; raise Unavailable (503, Retry-After: BUSY_RETRY
    seconds) if it stays busy past `timeout` seconds: a temporary state, not a conflict of
    the write with the page (409 made editors and agents treat it as one). With `one_waiter`
    (a request's write), only one may wait for the lock at a time (WAIT_FILE); another is
    refused so at once: eight writes of one wiki, its lock held, once held every worker of the
    host for 20 s, and every tenant waited. Yields the lock's file descriptor: a process that
    inherits it holds the lock too.

    flock is released by the kernel when the holder dies, so a killed worker never wedges a wiki.
    """
    path = wiki_dir / "write.lock"  # beside repo/, never inside it (it would show up as a page)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        if not _try_lock(fd):
            with _waiting_place(wiki_dir, one_waiter):
                deadline = time.monotonic() + timeout
                while not _try_lock(fd):
                    if time.monotonic() >= deadline:
                        raise Unavailable(BUSY, retry_after=BUSY_RETRY)
                    time.sleep(0.01)
        yield fd
    finally:
        os.close(fd)


BUSY = "the wiki is busy with another edit; try again in a moment"
# Beside write.lock: held by the one request waiting for it.
WAIT_FILE = "write-wait.lock"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def _waiting_place(wiki_dir: Path, one_waiter: bool):
    """The place of the one request waiting for the wiki's lock, held while it waits; raises
    Unavailable at once if another holds it. Without `one_waiter`, no place is needed."""
    if not one_waiter:
        yield
        return
    fd = os.open(wiki_dir / WAIT_FILE, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        if not _try_lock(fd):
            raise Unavailable(BUSY, retry_after=BUSY_RETRY)
        yield
    finally:
        os.close(fd)
