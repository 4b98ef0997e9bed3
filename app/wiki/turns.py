"""Each wiki's requests take turns, and a wiki whose requests pile up runs below everyone else's.

One pool of sync workers on a few cores serves every wiki. Clients hammering one wiki used to
keep several workers computing that wiki's pages at once, and every other wiki's views waited
for a core. Here a wiki runs at most `turns` requests at a time across all workers
(ROBOT_WIKI_CONCURRENCY, by default half the cores); a request that finds them all taken waits
for one, at most WAIT seconds, so a long render never stalls its wiki's other readers for long.
As many requests may wait as may run: the rest run at once, so waiting never holds more of the
workers every wiki shares than running would. A wiki that had to wait within the last
CONTENDED_FOR seconds is being hammered: its requests run at nice LOW_NICE, so the kernel gives
any other wiki's request the core first.

Turns are flock(2) locks on files in the wiki's folder (beside `write.lock`): shared by every
worker, released by the kernel if a worker dies. A wait sets the first turn file's mtime to
CONTENDED_FOR seconds ahead: the wiki is contended while that time is still to come. A wait
shorter than OVERLAP_GRACE does not count: two requests that merely brush (a page and the
first image on it) are not a hammering.

Lowering a process's priority is allowed to anyone; raising it back needs root or an
RLIMIT_NICE of 20 (systemd: LimitNICE=+0), so where neither holds, wikis take turns without
the priority change.
"""

from __future__ import annotations

import fcntl
import os
import resource
import time
from contextlib import contextmanager
from pathlib import Path

# Seconds a request waits for its wiki's turn before running anyway.
WAIT = 1.0
# A wait shorter than this (seconds) is two requests brushing, not contention.
OVERLAP_GRACE = 0.002
# Seconds after its last wait during which a wiki's requests run at the lower priority.
CONTENDED_FOR = 1.0
# The lowest priority: CFS gives nice 0 about 70 times the CPU of nice 19.
LOW_NICE = 19
# Pauses between tries for a turn (seconds): short first, as most turns end within milliseconds.
_FIRST_PAUSE = 0.0001
_LONGEST_PAUSE = 0.002


def can_restore_priority() -> bool:
    """Tell whether this process may raise its priority back after lowering it."""
    if os.geteuid() == 0:
        return True
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    return soft == resource.RLIM_INFINITY or 20 - soft <= base


class Turn:
    """One request at its wiki: the priority it runs at (`lowered`) and the turn it holds.

    Made by Turns.enter(); take() takes the turn, end_turn() hands it on, close() ends all.
    """

    def __init__(self, turns: Turns, wiki_dir: Path):
        self._turns = turns
        self._wiki_dir = wiki_dir
        self._fds: list[int] = []
        self.lowered = False

    def lower_if_contended(self) -> None:
        """Run at LOW_NICE from now on if the wiki is contended (and lowering is on)."""
        if self.lowered or not self._turns.lower:
            return
        try:
            contended_until = (self._wiki_dir / "turn-0.lock").stat().st_mtime
        except FileNotFoundError:
            return  # no wiki there, or one that never had a request
        if time.time() < contended_until:
            self._lower()

    def take(self, wait: bool = True) -> None:
        """Take one of the wiki's turns: wait up to Turns.wait if a waiting place is free,
        else go on at once; lower the priority if the wiki is contended. With `wait` false,
        take no turn and only lower the priority if the wiki is contended.

        Raises OSError if the turn files cannot be opened in the wiki's folder.
        """
        count = self._turns.turns
        for name in ("turn", "wait"):
            for n in range(count):
                path = self._wiki_dir / f"{name}-{n}.lock"
                self._fds.append(os.open(path, os.O_RDWR | os.O_CREAT, 0o640))
        if wait and self._turns.take(self._fds[:count], self._fds[count:]):
            if self._turns.lower:
                self._lower()
        self.lower_if_contended()

    def end_turn(self) -> None:
        """Hand the turn to the wiki's next request; the priority stays (a response may still
        be going out, at the priority it was computed at). Safe to call again."""
        while self._fds:
            os.close(self._fds.pop())  # and with the last one, the lock

    def close(self) -> None:
        """End the turn and put this process's priority back. Safe to call again."""
        self.end_turn()
        if self.lowered:
            os.setpriority(os.PRIO_PROCESS, 0, self._turns.base)
            self.lowered = False

    def _lower(self) -> None:
        if not self.lowered:
            os.setpriority(os.PRIO_PROCESS, 0, self._turns.base + LOW_NICE)
            self.lowered = True


class Turns:
    """Per-wiki turns shared by every worker on the host, and the priority they decide.

    `turns`: requests a wiki may run at once (as many may wait); `wait`: seconds a request
    waits for a turn; `lower`: whether contended wikis run at LOW_NICE (default: when it can be
    undone).
    """

    def __init__(self, turns: int, wait: float = WAIT, lower: bool | None = None):
        self.turns = turns
        self.wait = wait
        self.lower = can_restore_priority() if lower is None else lower
        self.base = os.getpriority(os.PRIO_PROCESS, 0)

    def enter(self, wiki_dir: Path) -> Turn:
        """A request for the wiki in `wiki_dir` arrives: lowered at once if the wiki is
        contended, so all its work (routing, sign-in) runs low. Call take() for the turn, and
        close() in the end."""
        turn = Turn(self, wiki_dir)
        turn.lower_if_contended()
        return turn

    @contextmanager
    def turn(self, wiki_dir: Path, wait: bool = True):
        """Hold a turn of the wiki in `wiki_dir` while inside (enter, take); yields the Turn."""
        turn = self.enter(wiki_dir)
        try:
            turn.take(wait)
            yield turn
        finally:
            turn.close()

    def take(self, turns: list[int], waits: list[int]) -> bool:
        """Lock one of `turns`, holding one of `waits` while waiting (up to `self.wait`), or go
        on at once when every waiting place is taken. Return whether the wiki is contended
        (and if so, mark it so on `turns[0]` for every worker)."""
        if _lock_one(turns) is not None:
            return False
        waiting = _lock_one(waits)
        if waiting is None:  # as many wait as may run: this one runs now, without a turn
            _mark_contended(turns[0])
            return True
        try:
            return self._wait(turns)
        finally:
            fcntl.flock(waiting, fcntl.LOCK_UN)

    def _wait(self, turns: list[int]) -> bool:
        """Wait for one of `turns` (up to `self.wait`); return whether the wait was contention,
        marked as soon as it outlasts OVERLAP_GRACE."""
        started = time.monotonic()
        pause = _FIRST_PAUSE
        contended = False
        while True:
            time.sleep(pause)
            pause = min(2 * pause, _LONGEST_PAUSE)
            if _lock_one(turns) is not None:
                return contended
            waited = time.monotonic() - started
            if waited > OVERLAP_GRACE and not contended:
                contended = True
                _mark_contended(turns[0])
            if waited >= self.wait:
                return contended


def _lock_one(fds: list[int]) -> int | None:
    """Lock the first free of `fds` (exclusive flock, no waiting) and return it, or None."""
    for fd in fds:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            continue
    return None


def _mark_contended(fd: int) -> None:
    """Tell every worker that this wiki is contended for the next CONTENDED_FOR seconds."""
    until = time.time() + CONTENDED_FOR
    os.utime(fd, (until, until))
