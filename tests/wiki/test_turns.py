"""An owner's requests take turns across processes; an owner in debt runs low, and a crowded
one is refused what it cannot wait for.

Each test's folders stand for owners' folders (Settings.owner_turns_dir). Real processes hold
the turns (flock is per open file, shared by every worker on the host).
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from contextlib import ExitStack
from pathlib import Path

import pytest
from werkzeug.test import Client

from app.core.errors import Unavailable
from app.core.settings import Settings
from app.core.wikis import create_wiki
from app.web import heartbeat
from app.web.bodies import SlowPlaces
from app.web.heartbeat import set_priority
from app.wiki.sends import SendWatch
from app.wiki.turns import CPU
from app.wiki.turns import CROWD
from app.wiki.turns import DEBT_LOW
from app.wiki.turns import DEBT_REFUSE
from app.wiki.turns import DEBT_WEIGHT
from app.wiki.turns import HEAVY_CPU
from app.wiki.turns import LOW_NICE
from app.wiki.turns import MEMBERS
from app.wiki.turns import OWNER
from app.wiki.turns import WAIT
from app.wiki.turns import Turn
from app.wiki.turns import Turns
from app.wiki.turns import WikiBusy
from app.wiki.turns import WriteWaits
from app.wiki.turns import add_debt
from app.wiki.turns import can_restore_priority
from app.wiki.turns import debt
from tests.conftest import descendants
from tests.conftest import forked_copies
from tests.conftest import pid_alive
from tests.wiki.instance import in_process

lowering = pytest.mark.skipif(
    not can_restore_priority(), reason="this process may not raise its priority back"
)
_fork = multiprocessing.get_context("fork")


def priority(pid: int = 0) -> tuple[int, int]:
    """The scheduling policy and nice value of the thread or process `pid` (0: this thread)."""
    return os.sched_getscheduler(pid), os.getpriority(os.PRIO_PROCESS, pid)


# A child's print of its own priority(), for read_blocked().
PRINT_PRIORITY = "print(os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0), flush=True)"


def printed(output: str) -> tuple[int, int]:
    """The last priority a child printed with PRINT_PRIORITY."""
    policy, nice = output.split()[-2:]
    return int(policy), int(nice)


# This process's own priority, which every test leaves as it found it.
BASE = priority()
BASE_POLICY, BASE_NICE = BASE


# A lowered request's priority: the kernel caps niceness at 19.
LOW = (os.SCHED_IDLE, min(BASE_NICE + LOW_NICE, 19))


def _hold(path, taken, release) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o640)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free, or this fails and never sets taken
    taken.set()
    release.wait(30)


class Holder:
    """Another worker holding the lock file `name` of the owner in `owner_dir` (its turn or
    waiting place) until release() or kill(); as a context, until its end."""

    def __init__(self, owner_dir, name: str = "turn-0.lock"):
        self._taken, self._release = _fork.Event(), _fork.Event()
        args = (owner_dir / name, self._taken, self._release)
        self.process = _fork.Process(target=_hold, args=args)
        self.process.start()
        assert self._taken.wait(10), f"{name} was not free"

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *_exc) -> None:
        self.release()

    def released(self) -> bool:
        return self._release.is_set()

    def release(self) -> None:
        self._release.set()
        self.process.join(10)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(10)


def set_debt(owner_dir, kind: str, seconds: float) -> None:
    until = time.time() + seconds
    (owner_dir / kind).touch()
    os.utime(owner_dir / kind, (until, until))


@pytest.fixture
def owners(tmp_path):
    folders = [tmp_path / "hammered", tmp_path / "other"]
    for folder in folders:
        folder.mkdir()
    return folders


def test_a_lone_request_keeps_its_priority_and_owes_nothing(owners):
    hammered, _ = owners
    base = priority()
    for _ in range(3):
        with Turns(turns=1).turn(hammered) as turn:
            assert not turn.lowered and priority() == base
    assert debt(hammered, CROWD) == debt(hammered, CPU) == 0.0


@lowering
def test_a_request_waits_for_its_owners_turn_and_the_wait_counts_against_the_owner(owners):
    hammered, _ = owners
    holder = Holder(hammered)
    threading.Timer(0.4, holder.release).start()
    turns = Turns(turns=1, wait=30)
    started = time.monotonic()
    with turns.turn(hammered) as turn:
        waited = time.monotonic() - started
        lowered, during = turn.lowered, priority()
    assert holder.released() and waited >= 0.35  # it had the turn until it let go
    # The wait, DEBT_WEIGHT times, is over DEBT_LOW: the owner runs low for a while.
    assert DEBT_LOW < debt(hammered, CROWD) <= DEBT_WEIGHT * waited
    assert lowered and during == LOW
    assert priority() == BASE


@lowering
@pytest.mark.parametrize("wait", [0.02, 0.1])
def test_a_request_that_waited_for_its_turn_runs_low_though_its_owner_owes_little(owners, wait):
    """Two clients taking turns on one owner's costly page each waited out the other's view: a
    wait at a time never put the owner over DEBT_LOW, so its turn kept a core busy at full
    priority and another tenant's p99 doubled (bench/tenancy.py's isolation case). A request
    that waited is one of a crowd, and runs low whatever its owner owes."""
    hammered, _ = owners
    holder = Holder(hammered)
    threading.Timer(wait, holder.release).start()
    with Turns(turns=1, wait=30).turn(hammered) as turn:
        lowered, during = turn.lowered, priority()
    assert holder.released() and debt(hammered, CROWD) < DEBT_LOW
    assert lowered and during == LOW
    assert priority() == BASE
    with Turns(turns=1, wait=30).turn(hammered) as turn:  # its next, taken at once
        assert not turn.lowered and priority() == BASE


@lowering
def test_an_owner_in_debt_runs_low_from_arrival_until_its_debt_drains(owners):
    hammered, other = owners
    turns = Turns(turns=1, wait=30)
    for kind in (CROWD, CPU):
        set_debt(hammered, kind, DEBT_LOW + 1)
        arrived = turns.enter(hammered)  # before routing and sign-in, before any turn
        assert arrived.lowered and priority() == LOW
        arrived.close()
        assert priority() == BASE
        set_debt(hammered, kind, DEBT_LOW - 0.2)  # a little debt: a page and its images
        with turns.turn(hammered) as turn:
            assert not turn.lowered
        set_debt(hammered, kind, 0)
    for quiet in (other, other / "no-such-wiki"):  # another owner, or one never seen
        with turns.turn(quiet) as turn:
            assert not turn.lowered and priority() == BASE


def test_another_owners_request_never_waits(owners):
    hammered, other = owners
    with Holder(hammered), Turns(turns=1, wait=30).turn(other):
        assert debt(other, CROWD) == 0.0  # taken at once


def test_a_wait_ends_after_its_limit_and_the_request_runs_while_the_owner_owes_little(owners):
    hammered, _ = owners
    with Holder(hammered) as holder:
        started = time.monotonic()
        with Turns(turns=1, wait=0.1, lower=False).turn(hammered):
            assert holder.process.is_alive()  # ran without the turn, which the holder has
        assert 0.1 <= time.monotonic() - started < 10


def test_a_crowded_owner_is_refused_what_it_cannot_wait_for(owners):
    hammered, _ = owners
    with Holder(hammered):
        set_debt(hammered, CROWD, DEBT_REFUSE + 1)
        turns = Turns(turns=1, wait=0.1, lower=False)
        with pytest.raises(WikiBusy) as refused:  # waited its 0.1 s in vain
            turns.turn(hammered).__enter__()
        assert refused.value.status == 429 and refused.value.retry_after >= 1
        with Holder(hammered, "wait-0.lock"):
            started = time.monotonic()
            with pytest.raises(WikiBusy):  # no place to wait: refused at once
                turns.turn(hammered).__enter__()
            assert time.monotonic() - started < 0.1


def test_a_visitor_finding_no_turn_and_no_waiting_place_is_refused_at_once(owners):
    """Twelfth review: four anonymous views of a costly page, arriving at once, owed nothing
    yet, and ran at once: they held every worker, and every tenant waited 28 s."""
    hammered, _ = owners
    with Holder(hammered), Holder(hammered, "wait-0.lock"):
        started = time.monotonic()
        with pytest.raises(WikiBusy) as refused:
            Turns(turns=1, wait=30, lower=False).turn(hammered).__enter__()
    assert time.monotonic() - started < WAIT  # it did not wait for a place
    assert refused.value.status == 429 and refused.value.retry_after >= 1


def test_an_owner_whose_wait_runs_out_runs_at_once_and_owes_that_run(owners):
    hammered, _ = owners
    (hammered / OWNER).mkdir()
    with Holder(hammered / OWNER) as holder:
        turn = Turns(turns=1, wait=0.2, lower=False).enter(hammered)
        turn.as_member(owner=True)  # signed in, the owner: not a visitor
        hammered = hammered / OWNER
        turn.take()  # waits out its 0.2 s, then runs beyond the turns
        assert holder.process.is_alive()
        time.sleep(0.3)
        turn.end_turn()  # the app is done: its run beyond the turns counts
        assert debt(hammered, CROWD) >= DEBT_WEIGHT * 0.3 - 0.1
        time.sleep(0.3)  # sending the response to a slow client does not
        before = debt(hammered, CROWD)
        turn.close()
        assert debt(hammered, CROWD) <= before


def test_a_member_owing_nothing_is_refused_when_no_waiting_place_is_left(owners):
    """Sixteenth review: six editors one member opened at once ran beyond the turns, held
    every worker, and another tenant's small page took 2-4 s. Like a visitors' crowd, a
    member's request that finds the turns and the waiting places all taken is refused."""
    hammered, _ = owners
    (hammered / OWNER).mkdir()
    with Holder(hammered / OWNER) as holder, Holder(hammered / OWNER, "wait-0.lock") as waiter:
        turn = Turns(turns=1, wait=30, lower=False).enter(hammered)
        turn.as_member(owner=True)
        with pytest.raises(WikiBusy, match="as many of your requests"):
            turn.take()
        turn.close()
        assert holder.process.is_alive() and waiter.process.is_alive()
    assert debt(hammered / OWNER, CROWD) == 0.0  # refused at once: it owes nothing


def test_an_owner_may_run_as_many_requests_as_it_has_turns(owners):
    hammered, _ = owners
    with Holder(hammered), Turns(turns=2, wait=30, lower=False).turn(hammered):
        pass
    assert debt(hammered, CROWD) == 0.0  # the second turn was free: nobody waited


def test_a_heavy_request_counts_its_cpu_against_its_owner(owners):
    hammered, other = owners
    counting = Turns(turns=1, wait=30, lower=False)  # its burning runs as fast as it may
    with counting.turn(other):
        pass  # light: owes nothing
    with counting.turn(hammered):
        burn(HEAVY_CPU + 0.4)
    assert debt(other, CPU) == 0.0
    # Its CPU, DEBT_WEIGHT times (1 s, drained from then on: a loaded machine may pause here).
    assert debt(hammered, CPU) > DEBT_LOW
    with Turns(turns=1, wait=30).turn(hammered) as turn:  # the next one runs low
        assert turn.lowered


@lowering
def test_a_transfer_holds_its_turn_until_it_is_handed_on(owners):
    """Fifth review: anonymous clone loops took no turn and held every worker. A transfer
    holds its pool's turn while it goes out; a view meanwhile waits for it."""
    hammered, _ = owners
    transfer = Turns(turns=1, wait=0.2, lower=False).enter(hammered)
    transfer.take()
    view = Turns(turns=1, wait=0.2, lower=False).enter(hammered)
    view.take()  # no turn came: it waited its limit
    view.close()
    assert debt(hammered, CROWD) > 0.0
    transfer.end_turn()
    set_debt(hammered, CROWD, 0.0)
    with Turns(turns=1, wait=30, lower=False).turn(hammered):
        assert debt(hammered, CROWD) == 0.0  # free at once
    transfer.close()


def test_a_transfers_turn_handed_on_from_another_thread_frees_it_once(owners):
    """The slow-send watcher (app.wiki.sends) hands a transfer's turn on from its own thread
    while the request's thread may end it too: the turn is free, and each file closed once."""
    hammered, _ = owners
    transfer = Turns(turns=1, wait=0.2, lower=False).enter(hammered)
    transfer.take()
    handing = [threading.Thread(target=transfer.end_turn) for _ in range(8)]
    for thread in handing:
        thread.start()
    transfer.end_turn()
    for thread in handing:
        thread.join()
    with Turns(turns=1, wait=30, lower=False).turn(hammered):
        assert debt(hammered, CROWD) == 0.0  # free at once
    transfer.close()


def test_the_git_processes_a_request_ran_count_as_its_cpu(owners):
    hammered, _ = owners
    with Turns(turns=1, wait=30, lower=False).turn(hammered):
        burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass"
        subprocess.run([sys.executable, "-c", burn], check=True)
    assert debt(hammered, CPU) > DEBT_LOW  # the child's CPU, DEBT_WEIGHT times


def test_a_stopped_requests_git_is_killed_whole_reaped_and_counted_as_its_own(owners):
    """Review 47: a git killed under a stopped read had its Popen dropped unwaited, and stayed
    a zombie until the worker's next process started, in another wiki's request, whose CPU then
    counted it (a false 503 there). stop_children() kills the request's processes with what
    they started; the request's end reaps them, and their CPU is the request's."""
    hammered, _ = owners
    burn_then_wait = (
        "import subprocess, sys, time\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.3: pass\n"
        "subprocess.run(['sleep', '60'])\n"
    )
    with Turns(turns=1, wait=30, lower=False).turn(hammered) as turn:
        git = subprocess.Popen([sys.executable, "-c", burn_then_wait])
        while not [p for p in descendants(git.pid) if p != git.pid]:
            time.sleep(0.05)  # its own child (git's pack-objects, say) runs
        grandchildren, pid = descendants(git.pid), git.pid
        with warnings.catch_warnings():  # "still running": dropped unwaited, as GitPython's
            warnings.simplefilter("ignore", ResourceWarning)  # read is when stopped mid-answer
            git = None
        turn.stop_children()
    assert forked_copies() == [] and not pid_alive(pid)
    deadline = time.monotonic() + 10  # SIGKILL is sent; it lands in a moment on a busy host
    while [p for p in grandchildren if pid_alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in grandchildren if pid_alive(p)]
    assert debt(hammered, CPU) > DEBT_LOW  # its 0.3 s, DEBT_WEIGHT times


def test_a_process_running_before_a_request_is_never_its_to_stop(owners):
    """The clock that dates processes counts in 10 ms ticks: a cat-file the last request
    started for another wiki may date from this one's arrival. Only what a request started
    is its own to stop."""
    hammered, _ = owners
    kept = subprocess.Popen(["sleep", "60"])  # as GitPython's cat-file --batch
    try:
        with Turns(turns=1, wait=30, lower=False).turn(hammered) as turn:
            turn._arrived = 0  # dated as if started with it
            turn.stop_children()
        with pytest.raises(subprocess.TimeoutExpired):
            kept.wait(timeout=0.5)  # it runs on
    finally:
        kept.kill()
        kept.wait()


def test_a_requests_cpu_reads_only_the_processes_it_started(owners, monkeypatch):
    """Review 54's bench: a worker keeps two cat-file processes for each wiki it has open, and
    each request read every one's /proc tree for its CPU (~4 ms per view with 100 wikis
    open). Those running when it arrived are passed over unread."""
    from app.wiki import turns as turns_module

    hammered, _ = owners
    kept = [subprocess.Popen(["sleep", "60"]) for _ in range(20)]  # as cat-file --batch
    read = []
    tree_cpu = turns_module.tree_cpu
    monkeypatch.setattr(turns_module, "tree_cpu", lambda pid: (read.append(pid), tree_cpu(pid))[1])
    try:
        with Turns(turns=1, wait=30, lower=False).turn(hammered) as turn:
            turn._arrived = 0  # dated as if started with it
            turn.cpu_spent()
            assert read == []
            own = subprocess.Popen(["sleep", "60"])
            turn.cpu_spent()
            assert read == [own.pid]
            own.kill()
            own.wait()
    finally:
        for process in kept:
            process.kill()
            process.wait()


def test_a_dead_workers_turn_is_free_at_once(owners):
    hammered, _ = owners
    Holder(hammered).kill()
    with Turns(turns=1, wait=30, lower=False).turn(hammered):
        pass
    assert debt(hammered, CROWD) == 0.0


@lowering
def test_ending_the_turn_hands_it_on_and_keeps_the_priority_until_close(owners):
    hammered, _ = owners
    set_debt(hammered, CPU, DEBT_LOW + 1)
    turns = Turns(turns=1, wait=30)
    turn = turns.enter(hammered)
    turn.take()
    turn.end_turn()
    Holder(hammered).release()  # the turn is free for the next request at once
    assert turn.lowered and priority() == LOW  # still sending its response, low
    turn.close()
    turn.close()  # twice is fine
    assert priority() == BASE


def test_an_owner_whose_turn_files_cannot_be_opened_runs_without_a_turn(tmp_path, caplog):
    (tmp_path / "run").write_text("")  # a run dir that is no folder: nothing can be made in it
    missing = tmp_path / "run" / "turns" / "owner"
    with caplog.at_level(logging.WARNING, logger="robot.wiki"):
        with Turns(turns=1, wait=30).turn(missing) as turn:
            assert not turn.lowered
    assert "running without a turn" in caplog.text


def test_an_owner_runs_half_the_cores_at_once_unless_the_operator_says_otherwise(tmp_path):
    data = {"ROBOT_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(data).wiki_concurrency == max(1, (os.cpu_count() or 1) // 2)
    assert Settings.from_env({**data, "ROBOT_WIKI_CONCURRENCY": "3"}).wiki_concurrency == 3


def test_a_debt_set_before_the_clock_stepped_back_counts_as_none(owners):
    hammered, _ = owners
    set_debt(hammered, CROWD, 3600)  # written an hour "ahead": the clock has since stepped back
    assert debt(hammered, CROWD) == 0.0
    add_debt(hammered, CROWD, 0.2)  # counted from now, not from the stale hour
    assert 0.0 < debt(hammered, CROWD) <= DEBT_WEIGHT * 0.2


def test_each_owner_has_a_folder_of_its_own_under_the_run_dir(tmp_path):
    settings = Settings.from_env({"ROBOT_DATA_DIR": str(tmp_path)})
    one = settings.owner_turns_dir("did:plc:one")
    assert one == settings.owner_turns_dir("did:plc:one")
    assert one != settings.owner_turns_dir("did:plc:two")
    assert one.parent == settings.run_dir / "turns"
    # Any DID is one plain name in that folder, whatever characters it holds.
    odd = settings.owner_turns_dir("did:web:../../etc%2Fpasswd/..")
    assert odd.parent == one.parent and odd.name.isalnum()


@lowering
def test_a_lowered_request_puts_back_the_priority_an_operator_set(owners):
    hammered, _ = owners
    set_debt(hammered, CPU, DEBT_LOW + 1)
    turns = Turns(turns=1, wait=30)
    os.setpriority(os.PRIO_PROCESS, 0, BASE_NICE + 1)  # `renice +1` of a worker once started
    try:
        with turns.turn(hammered) as turn:
            assert turn.lowered and priority() == (os.SCHED_IDLE, min(BASE_NICE + 1 + LOW_NICE, 19))
        assert priority() == (BASE_POLICY, BASE_NICE + 1)
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, BASE_NICE)


def burn_until_lowered(turn) -> None:
    """Spend CPU until the watcher has lowered `turn`, 3 s of CPU at most: its thread may come
    late on a busy host (CI), past any fixed burn."""
    started = time.process_time()
    while not turn.lowered and time.process_time() - started < 3:
        burn(HEAVY_CPU / 4)
    assert turn.lowered, watcher_state()


def watcher_state() -> str:
    """What a check that found no lowering reports: the watcher's thread and its priority (CI
    once found three requests in a row not lowered after 3 s of CPU each)."""
    watchers = [t for t in threading.enumerate() if t.name == "robot-turns"]
    if not watchers:
        return "no watcher thread"
    watcher = watchers[0]
    return (
        f"watcher {watcher.native_id} alive={watcher.is_alive()} at {priority(watcher.native_id)}"
    )


def in_a_forked_child(target, *args):
    """What `target(*args, answers)` puts in its queue, run in a forked child (as gunicorn's
    workers are), which must end well."""
    answers = _fork.Queue()
    child = _fork.Process(target=target, args=(*args, answers))
    child.start()
    answer = answers.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    return answer


def burn(seconds: float) -> None:
    """Spend `seconds` of this process's CPU (user and system)."""
    started = time.process_time()
    while time.process_time() - started < seconds:
        pass


@lowering
def test_a_request_runs_low_once_it_is_heavy_and_its_later_git_runs_with_it(owners):
    hammered, _ = owners
    turns = Turns(turns=1, wait=30)
    with turns.turn(hammered) as turn:
        burn(HEAVY_CPU / 4)
        assert not turn.lowered and priority() == BASE  # a cheap request is as anyone's
        burn_until_lowered(turn)  # past HEAVY_CPU, whatever its owner owes
        assert priority() == LOW
        started = subprocess.run(
            [sys.executable, "-c", f"import os\n{PRINT_PRIORITY}"], capture_output=True, text=True
        )
        assert printed(started.stdout) == LOW  # a git run it starts now runs low too
    assert priority() == BASE
    with turns.turn(owners[1]) as cheap:  # the watch ended with the request: the next is new
        burn(HEAVY_CPU / 4)
        assert not cheap.lowered


@lowering
def test_a_closed_request_is_never_lowered_afterwards(owners):
    hammered, _ = owners
    turns = Turns(turns=1, wait=30)
    with turns.turn(hammered):
        pass
    burn(HEAVY_CPU * 2)  # the next request's work, outside any turn
    assert priority() == BASE


@lowering
def test_a_request_whose_thread_ended_unclosed_is_never_lowered(owners):
    """Thread ids are reused (pid_max is 32,768 here): a turn left by a thread that ended
    would have its lowering hit whatever thread or process got the id next (a check reads this
    process's CPU, so it turns heavy in time). The watcher forgets it instead."""
    from app.wiki import turns as watched

    hammered, _ = owners
    left = []
    maker = threading.Thread(target=lambda: left.append(Turns(turns=1, wait=30).enter(hammered)))
    maker.start()
    maker.join()
    burn(HEAVY_CPU * 4)  # this process's CPU: the turn's own, as a check counts it
    time.sleep(0.3)  # a few of the watcher's ticks, should it come late
    assert not left[0].lowered
    assert left[0] not in watched._WATCHER._due


def read_blocked(command: list[str]) -> str:
    """Run `command` and return its output, read as a worker reads git's: one blocking read
    after another, asleep while the child computes in silence. (The SIGALRM watch, restarting
    such reads, ran its check only once the child wrote; the watcher's thread does not wait.)"""
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    with process:
        return b"".join(iter(lambda: process.stdout.read1(65536), b"")).decode()


@lowering
def test_a_request_whose_git_process_is_heavy_runs_low_with_it(owners):
    """The CPU is the child's (git log on a deep history), the worker only waits for it."""
    hammered, _ = owners
    child = (
        "import os, time\nt = time.process_time()\n"
        "while time.process_time() - t < 0.4: pass\n"
        f"{PRINT_PRIORITY}"
    )
    with Turns(turns=1, wait=30).turn(hammered) as turn:
        done = read_blocked([sys.executable, "-c", child])
        assert turn.lowered and priority() == LOW, watcher_state()
        assert printed(done) == LOW  # lowered while it ran
    assert priority() == BASE
    assert debt(hammered, CPU) > DEBT_LOW  # and its CPU counts against its owner


@lowering
def test_a_heavy_grandchild_counts_and_runs_low_with_what_started_it(owners):
    """Tenth review: git http-backend ran low while the receive-pack and push rules it had
    started (a grandchild's CPU, not counted) ran on at nice 0. The whole tree counts now, and
    the whole tree is lowered."""
    hammered, _ = owners
    burner = (
        "import os, time\nt = time.process_time()\n"
        "while time.process_time() - t < 0.4: pass\n"
        f"{PRINT_PRIORITY}\n"
        f"time.sleep(0.3)\n{PRINT_PRIORITY}"
    )
    with Turns(turns=1, wait=30).turn(hammered) as turn:
        # sh starts the burner and waits: the worker's child spends nothing itself.
        script = f"{shlex.quote(sys.executable)} -c {shlex.quote(burner)}; :"
        done = read_blocked(["sh", "-c", script])
        assert turn.lowered
        assert printed(done) == LOW  # lowered while it ran
    assert priority() == BASE


@lowering
def test_a_kept_child_that_a_lowered_request_started_is_put_back_with_the_worker(owners):
    hammered, _ = owners
    set_debt(hammered, CPU, DEBT_LOW + 1)
    with Turns(turns=1, wait=30).turn(hammered) as turn:
        assert turn.lowered
        kept = subprocess.Popen(["sleep", "30"])  # as GitPython's cat-file --batch
    try:
        assert priority(kept.pid) == BASE  # serves the next request
    finally:
        kept.kill()
        kept.wait()


@lowering
def test_a_crowd_of_visitors_never_refuses_or_lowers_the_wikis_members(owners):
    hammered, _ = owners
    turns = Turns(turns=1, wait=0.1)
    with Holder(hammered), Holder(hammered, "wait-0.lock"):
        set_debt(hammered, CROWD, DEBT_REFUSE + 1)  # visitors keep the owner's wikis busy
        with pytest.raises(WikiBusy):
            turns.turn(hammered).__enter__()  # another visitor is refused
        member = turns.enter(hammered)
        assert member.lowered  # who it is is not known on arrival
        member.as_member()  # signed in: its own pool, which owes nothing
        assert not member.lowered and priority() == BASE
        member.take()  # a turn of its own, at once
        member.close()
    assert debt(hammered / MEMBERS, CROWD) == 0.0


@lowering
def test_members_who_crowd_their_own_pool_run_low(owners):
    hammered, _ = owners
    turns = Turns(turns=1, wait=30)
    turns.enter(hammered).close()  # a first request makes the members' folder
    set_debt(hammered / MEMBERS, CPU, DEBT_LOW + 1)
    member = turns.enter(hammered)
    member.as_member()
    assert member.lowered and priority() == LOW
    member.close()
    assert priority() == BASE


@lowering
def test_a_check_that_lands_inside_a_lowering_still_puts_back_the_base(owners):
    """CI once left a worker at nice 19: the timer's check lowered the request again in the
    middle of a lowering, after the priority had dropped, and read the low one as its base."""
    hammered, _ = owners
    turn = Turns(turns=1, wait=30).enter(hammered)
    os.sched_setscheduler(0, LOW[0], os.sched_param(0))  # a lowering under way, not yet
    os.setpriority(os.PRIO_PROCESS, 0, LOW[1])  # marked as done
    turn._lower(with_children=True)  # the watcher's check, landing right there
    turn.close()
    assert priority() == BASE


@lowering
def test_a_crowding_member_of_one_wiki_never_locks_the_owner_or_other_wikis_members_out(owners):
    """Fourth review: a viewer of one of alice's wikis, crowding it, got 57 refusals onto
    alice's own views of another wiki. Each wiki's members have a pool, the owner another."""
    hammered, _ = owners
    turns = Turns(turns=1, wait=0.1)
    turns.enter(hammered, "alpha2").close()  # makes the pools' folders
    crowded = hammered / MEMBERS / "alpha2"
    with Holder(crowded), Holder(crowded, "wait-0.lock"):
        set_debt(crowded, CROWD, DEBT_REFUSE + 1)
        viewer = turns.enter(hammered, "alpha2")
        viewer.as_member()
        with pytest.raises(WikiBusy):
            viewer.take()  # the crowding viewer is refused
        viewer.close()
        for wiki, owner in (("alpha", True), ("alpha2", True), ("alpha", False)):
            turn = turns.enter(hammered, wiki)
            assert turn.lowered == (wiki == "alpha2")  # not known yet who asks
            turn.as_member(owner=owner)
            assert not turn.lowered and priority() == BASE
            turn.take()  # a turn at once
            turn.close()
    assert debt(hammered / OWNER, CROWD) == 0.0
    assert debt(hammered / MEMBERS / "alpha", CROWD) == 0.0


def _add_debts(owner_dir, count: int) -> None:
    for _ in range(count):
        add_debt(owner_dir, CROWD, 0.0003)


def test_debts_added_by_many_workers_at_once_all_count(owners):
    """Each update reads and writes the debt under a lock of its own: four workers adding at
    once lose none of each other's."""
    hammered, _ = owners
    started = time.time()
    workers = [
        multiprocessing.get_context("fork").Process(target=_add_debts, args=(hammered, 1000))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    added = 4 * 1000 * 0.0003 * DEBT_WEIGHT  # 2.4 s, under DEBT_MAX
    assert debt(hammered, CROWD) >= added - (time.time() - started) - 0.01


def test_one_full_wait_of_a_pool_that_owed_nothing_is_never_refused(owners):
    """Seventh review: the owner's page view, waiting out the turn of the owner's own export,
    was refused: one whole wait adds more than DEBT_REFUSE. Refusal goes by what the pool owed
    before the request waited."""
    hammered, _ = owners
    assert WAIT * DEBT_WEIGHT > DEBT_REFUSE  # the wait alone would pass the line
    export = Turns(turns=1, wait=WAIT, lower=False).enter(hammered)
    export.take()
    view = Turns(turns=1, wait=WAIT, lower=False).enter(hammered)
    view.take()  # no turn came in WAIT seconds: it runs all the same
    assert debt(hammered, CROWD) > DEBT_REFUSE
    with pytest.raises(WikiBusy):  # the next one finds the pool in debt
        Turns(turns=1, wait=0.05, lower=False).enter(hammered).take()
    view.close()
    export.close()


def _heavy_request(owner_dir: Path, answers) -> None:
    with Turns(turns=1, wait=30).turn(owner_dir) as turn:
        burn_until_lowered(turn)
        answers.put((turn.lowered, priority()))


@lowering
def test_a_forked_worker_watches_its_own_requests(owners):
    """gunicorn forks its workers: a child has none of its parent's threads, the watcher's
    either, and makes its own."""
    hammered, other = owners
    with Turns(turns=1, wait=30).turn(other):
        pass  # this process's watcher runs
    assert in_a_forked_child(_heavy_request, hammered) == (True, LOW)


def _first_request_lowered_on_arrival(owner_dir: Path, answers) -> None:
    set_debt(owner_dir, CPU, DEBT_LOW + 1)
    turn = Turns(turns=1, wait=30).enter(owner_dir)  # this process's first: the watcher starts
    watcher = next(t for t in threading.enumerate() if t.name == "robot-turns")
    deadline = time.monotonic() + 10
    while priority(watcher.native_id) == LOW and time.monotonic() < deadline:
        time.sleep(0.01)  # it starts at its maker's (LOW), then sets its own
    answers.put((turn.lowered, priority(watcher.native_id)))
    turn.close()


@lowering
def test_the_watcher_runs_at_the_priority_its_first_request_found(owners):
    """CI: a thread inherits its maker's priority, and the watcher made by a request lowered
    on arrival ran at SCHED_IDLE for good, lowering heavy requests late on a busy host."""
    hammered, _ = owners
    assert in_a_forked_child(_first_request_lowered_on_arrival, hammered) == (True, BASE)


def _slow_send_watch_made_by_a_lowered_request(places: Path, answers) -> None:
    heartbeat.install(lambda: None)  # as gunicorn's worker does: this is its own priority
    set_priority(0, *LOW)  # the request that sends the worker's first response runs lowered
    ours, theirs = socket.socketpair()
    watch = SendWatch(SlowPlaces(places, places=2))
    watch.start({"gunicorn.socket": ours})
    watcher = next(t for t in threading.enumerate() if t.name == "robot-sends")
    deadline = time.monotonic() + 10
    while priority(watcher.native_id) == LOW and time.monotonic() < deadline:
        time.sleep(0.01)  # it starts at its maker's (LOW), then sets the worker's
    answers.put(priority(watcher.native_id))
    watch.stop()
    ours.close()
    theirs.close()


@lowering
def test_the_slow_send_watcher_runs_at_the_workers_priority(tmp_path):
    """The slow-send watcher, made by the worker's first response, ran at that request's
    priority for good: made by a lowered request, it would hand a slow send's turn on late on
    a busy host. It runs at the worker's own, like every helper thread."""
    assert in_a_forked_child(_slow_send_watch_made_by_a_lowered_request, tmp_path) == BASE


@lowering
def test_a_known_hosts_request_is_lowered_before_its_wiki_is_looked_up(tmp_path):
    """Looking up a request's route and wiki took half a millisecond of each hammering
    client's request at full priority, a tenth of a cached view of a costly page. A request
    to a host the worker has seen arrives among its owner's once routed (Otterwiki's static
    files take no turn: entering one was a fifth of their CPU), lowered if they owe, before
    its wiki and caller are looked up."""
    owner = ("did:plc:turns-early", "turns-early.test")
    made = in_process(tmp_path / "data", [owner])
    try:
        create_wiki(made.settings, made.platform.store, "early", owner[0], public=True)
        gateway, seen = made.app, []
        wiki_of = gateway._wiki_of
        gateway._wiki_of = lambda environ: (seen.append(priority()), wiki_of(environ))[1]
        client = Client(gateway)
        assert (
            client.get("/Home", headers={"Host": "early.localhost"}, buffered=True).status_code
            == 200
        )
        set_debt(made.settings.owner_turns_dir(owner[0]), CROWD, DEBT_LOW + 1)
        assert (
            client.get("/Home", headers={"Host": "early.localhost"}, buffered=True).status_code
            == 200
        )
        assert seen == [BASE, LOW]  # the first request taught the worker the host's owner
        assert priority() == BASE  # put back with the response
    finally:
        made.app.tenancy.close()
        made.platform.store.close()


def _writer(owner_dir, wiki: str, owner: bool) -> Turn:
    """A signed-in writer's request at `wiki` of the owner whose folder is `owner_dir`."""
    turn = Turns(turns=1, wait=30, lower=False).enter(owner_dir, wiki)
    turn.as_member(owner=owner)
    return turn


@pytest.mark.parametrize("places", [2, 3, 4])
def test_one_owners_writes_never_take_the_last_place_to_wait_for_a_lock(owners, tmp_path, places):
    """Twenty-first review: an owner's writes looping on two locked wikis, as owner and as
    members, filled the host's places to wait and refused another owner's saves (503)."""
    hammered, other = owners
    waits = WriteWaits(tmp_path / "slow", places)
    pools = [
        _writer(hammered, "a", owner=True),
        _writer(hammered, "a", owner=False),
        _writer(hammered, "b", owner=False),
        _writer(hammered, "c", owner=False),
    ]
    with ExitStack() as held:
        waiting = 0
        for turn in pools:
            try:
                held.enter_context(waits.waiting(turn))
                waiting += 1
            except Unavailable as refused:
                assert refused.retry_after == 2 and "owner's wikis" in refused.message
        assert waiting == places - 1
        held.enter_context(waits.waiting(_writer(other, "d", owner=True)))  # the last place
        with pytest.raises(Unavailable, match="on this server"):
            held.enter_context(waits.waiting(_writer(tmp_path / "third", "e", owner=True)))
    # All given back: the first owner's pools wait again.
    with waits.waiting(pools[1]):
        pass


def test_a_pool_waits_for_one_lock_at_a_time(owners, tmp_path):
    waits = WriteWaits(tmp_path / "slow", 4)
    with waits.waiting(_writer(owners[0], "a", owner=True)):
        with pytest.raises(Unavailable):
            with waits.waiting(_writer(owners[0], "b", owner=True)):
                pass


def test_lock_waits_and_slow_transfers_share_the_hosts_places(owners, tmp_path):
    """Twenty-first review: two lock waits and three slow bodies, counted apart, held all
    four workers. Lock waits take places among the slow transfers'."""
    slow = SlowPlaces(tmp_path / "slow", places=3)
    waits = WriteWaits(tmp_path / "slow", 2)
    held = [slow.take(tmp_path / f"pool{n}") for n in range(3)]  # three slow bodies
    assert all(held)
    with pytest.raises(Unavailable, match="on this server"):
        with waits.waiting(_writer(owners[1], "d", owner=True)):
            pass
    held[0].free()
    held[1].free()
    with waits.waiting(_writer(owners[1], "d", owner=True)):
        last = slow.take(tmp_path / "pool9")  # a slow body still finds the place left
        assert last is not None
        last.free()
    held[2].free()
