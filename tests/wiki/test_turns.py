"""A wiki's requests take turns across processes; a wiki that had to wait runs at a lower priority.

Real processes hold the turns (flock is per open file, shared by every worker on the host).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import pytest

from app.core.settings import Settings
from app.wiki.gateway import _is_transfer
from app.wiki.turns import CONTENDED_FOR
from app.wiki.turns import LOW_NICE
from app.wiki.turns import Turns
from app.wiki.turns import can_restore_priority

lowering = pytest.mark.skipif(
    not can_restore_priority(), reason="this process may not raise its priority back"
)
_fork = multiprocessing.get_context("fork")


def priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def _hold(wiki_dir, taken, release) -> None:
    with Turns(turns=1, lower=False).turn(wiki_dir):
        taken.set()
        release.wait(30)


def _wait_for_turn(wiki_dir, taken, release) -> None:
    """Hold the waiting place as a request waiting for its turn does, until `release`."""
    import fcntl

    fd = os.open(wiki_dir / "wait-0.lock", os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.flock(fd, fcntl.LOCK_EX)
    taken.set()
    release.wait(30)


class Holder:
    """Another worker holding the turn of the wiki in `wiki_dir` (or with `wait`, its place to
    wait for one) until release() or kill()."""

    def __init__(self, wiki_dir, wait: bool = False):
        self._taken, self._release = _fork.Event(), _fork.Event()
        target = _wait_for_turn if wait else _hold
        self.process = _fork.Process(target=target, args=(wiki_dir, self._taken, self._release))
        self.process.start()
        assert self._taken.wait(10), "the holder never took its turn"

    def released(self) -> bool:
        return self._release.is_set()

    def release(self) -> None:
        self._release.set()
        self.process.join(10)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(10)


@pytest.fixture
def wikis(tmp_path):
    folders = [tmp_path / "hammered", tmp_path / "other"]
    for folder in folders:
        folder.mkdir()
    return folders


def test_a_lone_request_keeps_its_priority_and_marks_nothing(wikis):
    hammered, _ = wikis
    base = priority()
    with Turns(turns=1).turn(hammered) as turn:
        assert not turn.lowered and priority() == base
    with Turns(turns=1).turn(hammered) as turn:  # its next request: still nobody waited
        assert not turn.lowered


@lowering
def test_a_request_waits_for_its_wikis_turn_then_runs_lower_and_is_put_back(wikis):
    hammered, _ = wikis
    holder = Holder(hammered)
    threading.Timer(0.3, holder.release).start()
    turns = Turns(turns=1, wait=30)
    started = time.monotonic()
    with turns.turn(hammered) as turn:
        waited = time.monotonic() - started
        lowered, during = turn.lowered, priority()
    assert holder.released()  # it had the turn until it let go
    assert waited >= 0.25 and lowered
    # The kernel caps niceness at 19 (a suite run under `nice` starts close to it).
    assert during == min(turns.base + LOW_NICE, 19)
    assert priority() == turns.base


@lowering
def test_a_contended_wiki_stays_lower_for_a_while_and_other_wikis_never_wait(wikis):
    hammered, other = wikis
    holder = Holder(hammered)
    try:
        turns = Turns(turns=1, wait=0.05)
        with turns.turn(other) as turn:  # another wiki's turn is free: no wait, no lowering
            assert not turn.lowered and priority() == turns.base
        with turns.turn(hammered) as turn:  # waited its 50 ms, then ran anyway, lower
            assert turn.lowered
        contended_until = (hammered / "turn-0.lock").stat().st_mtime
        assert time.time() < contended_until <= time.time() + CONTENDED_FOR
    finally:
        holder.release()
    with turns.turn(hammered) as turn:  # free now, but it was hammered a moment ago
        assert turn.lowered
    now = time.time()
    os.utime(hammered / "turn-0.lock", (now, now))  # as if CONTENDED_FOR had passed
    with turns.turn(hammered) as turn:  # quiet for longer than CONTENDED_FOR
        assert not turn.lowered
    assert priority() == turns.base


def test_a_request_waits_no_longer_than_its_limit(wikis):
    hammered, _ = wikis
    holder = Holder(hammered)
    try:
        turns = Turns(turns=1, wait=0.1, lower=False)
        with turns.turn(hammered) as turn:  # ran without the turn, which the holder still has
            assert holder.process.is_alive() and not turn.lowered
    finally:
        holder.release()


def test_a_wiki_may_run_as_many_requests_as_it_has_turns(wikis):
    hammered, _ = wikis
    holder = Holder(hammered)
    try:
        mtime = (hammered / "turn-0.lock").stat().st_mtime_ns
        with Turns(turns=2, wait=30, lower=False).turn(hammered):
            pass  # the second turn was free: taken at once
        assert (hammered / "turn-0.lock").stat().st_mtime_ns == mtime  # nobody waited
    finally:
        holder.release()


def test_a_dead_workers_turn_is_free_at_once(wikis):
    hammered, _ = wikis
    holder = Holder(hammered)
    holder.kill()
    mtime = (hammered / "turn-0.lock").stat().st_mtime_ns
    with Turns(turns=1, wait=30, lower=False).turn(hammered):
        pass
    assert (hammered / "turn-0.lock").stat().st_mtime_ns == mtime


def test_ending_the_turn_keeps_the_priority_until_close(wikis):
    hammered, _ = wikis
    turns = Turns(turns=1, wait=30, lower=False)
    turn = turns.enter(hammered)
    turn.take()
    turn.end_turn()
    holder = Holder(hammered)  # took the turn while the response would still be going out
    holder.release()
    turn.close()
    turn.close()  # twice is fine


def test_a_wiki_runs_half_the_cores_at_once_unless_the_operator_says_otherwise(tmp_path):
    data = {"ROBOT_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(data).wiki_concurrency == max(1, (os.cpu_count() or 1) // 2)
    assert Settings.from_env({**data, "ROBOT_WIKI_CONCURRENCY": "3"}).wiki_concurrency == 3


def test_as_many_wait_as_may_run_and_the_rest_run_at_once(wikis):
    hammered, _ = wikis
    holder = Holder(hammered)
    waiter = Holder(hammered, wait=True)  # waits for the holder's turn, holding the waiting place
    try:
        turns = Turns(turns=1, wait=30, lower=False)
        started = time.monotonic()
        with turns.turn(hammered):  # neither a turn nor a place to wait: on at once
            assert holder.process.is_alive() and waiter.process.is_alive()
        assert time.monotonic() - started < 10
        assert (hammered / "turn-0.lock").stat().st_mtime > time.time()  # contended
    finally:
        holder.release()
        waiter.release()


@pytest.mark.parametrize(
    "environ, transfer",
    [
        ({}, False),
        ({"CONTENT_LENGTH": "1200"}, False),
        ({"CONTENT_LENGTH": str(64 * 1024)}, False),
        ({"CONTENT_LENGTH": str(64 * 1024 + 1)}, True),
        ({"CONTENT_LENGTH": "10485760"}, True),
        ({"CONTENT_LENGTH": "-5"}, False),
        ({"CONTENT_LENGTH": "many"}, False),
        ({"HTTP_TRANSFER_ENCODING": "chunked"}, True),
        ({"HTTP_TRANSFER_ENCODING": "gzip, Chunked"}, True),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_uploads_are_transfers_that_take_no_turn(environ, transfer, method):
    assert _is_transfer({**environ, "REQUEST_METHOD": method}) is transfer


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
@pytest.mark.parametrize(
    "environ",
    [{"CONTENT_LENGTH": "10485760"}, {"HTTP_TRANSFER_ENCODING": "chunked"}],
)
def test_a_read_claiming_a_big_body_still_takes_its_turn(environ, method):
    assert _is_transfer({**environ, "REQUEST_METHOD": method}) is False


@lowering
def test_an_upload_takes_no_turn_but_runs_lower_while_its_wiki_is_contended(wikis):
    hammered, _ = wikis
    holder = Holder(hammered)
    try:
        turns = Turns(turns=1, wait=0.05)
        with turns.turn(hammered, wait=False) as upload:  # the holder's turn: no wait, no lowering
            assert not upload.lowered
        with turns.turn(hammered):  # a read that waited: the wiki is contended now
            pass
        with turns.turn(hammered, wait=False) as upload:
            assert upload.lowered and priority() == min(turns.base + LOW_NICE, 19)
        assert priority() == turns.base
    finally:
        holder.release()


@lowering
def test_a_request_to_a_contended_wiki_runs_lower_from_the_moment_it_arrives(wikis):
    hammered, other = wikis
    turns = Turns(turns=1, wait=30)
    until = time.time() + CONTENDED_FOR
    (hammered / "turn-0.lock").touch()
    os.utime(hammered / "turn-0.lock", (until, until))
    arrived = turns.enter(hammered)  # before routing and sign-in, before any turn
    assert arrived.lowered and priority() == min(turns.base + LOW_NICE, 19)
    arrived.close()
    assert priority() == turns.base
    for quiet in (other, other / "no-such-wiki"):  # quiet, or no wiki there at all
        arrived = turns.enter(quiet)
        assert not arrived.lowered and priority() == turns.base
        arrived.close()
