"""app.core.confined: a step in a real forked child, its records streamed back, its time and
memory capped, and nothing of it left behind."""

import faulthandler
import logging
import os
import resource
import signal
import time
from pathlib import Path

import pytest

from app.core import confined
from app.core.confined import Ending
from app.core.confined import run_confined
from app.core.interrupts import holding_off
from tests.conftest import descendants
from tests.conftest import forked_copies
from tests.conftest import pid_alive


def run(produce, seconds=30.0, memory_bytes=64 * 2**20):
    records = []
    ending = run_confined(produce, records.append, seconds, memory_bytes)
    return ending, records


def test_records_come_back_in_order_and_the_child_is_gone():
    ending, records = run(lambda: ({"n": n, "pid": os.getpid()} for n in range(500)))
    assert ending is Ending.FINISHED
    assert [r["n"] for r in records] == list(range(500))
    assert {r["pid"] for r in records} != {os.getpid()}  # made in another process
    assert forked_copies() == []


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def test_a_step_past_its_deadline_is_killed_and_what_it_sent_is_kept():
    def slow():
        yield "first"
        while True:  # CPU, never yielding again
            pass

    started, cpu_before = time.monotonic(), _children_cpu()
    ending, records = run(slow, seconds=1.0)
    used = _children_cpu() - cpu_before  # the child's whole CPU, read a moment after the verdict
    assert records == ["first"]
    assert time.monotonic() - started < 30  # it did not wait for the step (a loose bound)
    # Out of time when it had its time on a CPU; a busy host may have left it short of that.
    assert ending is (Ending.OUT_OF_TIME if used >= 0.6 else ending)
    assert ending is (Ending.STARVED if used < 0.4 else ending)
    assert ending in (Ending.OUT_OF_TIME, Ending.STARVED)
    assert forked_copies() == []


def test_a_step_that_sleeps_or_blocks_is_killed_too_and_called_starved():
    """Review 59: a step stopped at its deadline with little of the CPU used says nothing of
    its cost (a busy host, a child held up): STARVED, which callers keep no verdict on."""

    def blocked():
        yield 1
        signal.pause()  # waits for a signal that never comes

    assert run(blocked, seconds=0.3) == (Ending.STARVED, [1])
    assert forked_copies() == []


def test_a_step_held_up_by_sigstop_is_starved():
    def held():
        os.kill(os.getpid(), signal.SIGSTOP)  # as a host that gives it no CPU
        yield "never"

    assert run(held, seconds=0.5) == (Ending.STARVED, [])
    assert forked_copies() == []


class _Stop(Exception):
    """Raised into a confined call again and again, as the render budget's SIGPROF does."""


def _stop_as_the_budget_does(signum, frame):
    # The budget's manners (app.core.interrupts); only into the confined call's own frames,
    # not the test's around it nor a finalizer's (where Python prints and drops it).
    if not holding_off() and frame.f_code.co_filename == confined.__file__:
        raise _Stop


@pytest.mark.parametrize("ends", ["killed", "exiting"])
def test_exceptions_raised_into_it_again_and_again_leave_no_child(ends):
    """CI: a zombie copy of a gunicorn worker was left after a render whose budget ran out
    while its confined sanitizer was reaped: the budget's exception, raised again and again,
    interrupted the wait. Now the fork and the reaping hold such exceptions off, and what the
    few instructions between them may still leave is reaped by the thread's next step."""

    def step():
        yield 1
        if ends == "killed":
            signal.pause()

    previous = signal.signal(signal.SIGALRM, _stop_as_the_budget_does)
    signal.setitimer(signal.ITIMER_REAL, 0.0003, 0.0003)
    stopped = 0
    try:
        for _ in range(40):
            try:
                run(step, seconds=0.05)
            except _Stop:
                stopped += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert stopped > 0
    run(lambda: iter([1]))
    assert forked_copies() == []


def test_a_fork_that_fails_is_unavailable_and_leaks_nothing(monkeypatch):
    """A host out of processes or memory (fork's EAGAIN, ENOMEM): a 503 to retry, not an
    OSError (a 500), and the pipe's descriptors are closed."""
    from app.core.errors import Unavailable

    def fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fork", fork)
    with pytest.raises(Unavailable) as refused:
        run(lambda: iter([1]))
    assert (refused.value.status, refused.value.retry_after) == (503, 5)
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize(
    "hungry",
    [
        lambda: bytearray(512 * 2**20),  # one big allocation
        lambda: [str(n) * 10 for n in range(10**8)],  # many small ones
        lambda: "x" * (2**31),  # a string
    ],
)
def test_a_step_past_its_memory_cap_ends_out_of_memory(hungry):
    def produce():
        yield "before"
        hungry()
        yield "never"

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert run(produce, memory_bytes=32 * 2**20) == (Ending.OUT_OF_MEMORY, ["before"])
    # the parent's own high-water mark did not take the child's allocation
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024  # KiB
    assert forked_copies() == []


def test_a_step_that_raises_ends_failed_and_is_logged(caplog):
    def broken():
        yield "ok"
        raise KeyError("no such page")

    with caplog.at_level(logging.WARNING, logger="app.core.confined"):
        assert run(broken) == (Ending.FAILED, ["ok"])
    assert "KeyError" in caplog.text and "no such page" in caplog.text


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM, signal.SIGABRT])
def test_a_step_that_dies_of_a_signal_ends_failed(how, caplog):
    """Dying of a signal (SIGABRT: Rust's abort on an allocation past the memory cap) ends
    the step failed, logged once, with no Python traceback of the child's: the fault handler
    on in the parent (pytest's here, -X faulthandler in a service) is off in the child."""
    assert faulthandler.is_enabled()

    def dying():
        yield "ok" if not faulthandler.is_enabled() else "fault handler on"
        os.kill(os.getpid(), how)
        time.sleep(30)

    with caplog.at_level(logging.WARNING, logger="app.core.confined"):
        assert run(dying) == (Ending.FAILED, ["ok"])
    assert forked_copies() == []


def test_the_childs_cpu_and_core_files_are_capped_and_ours_are_not():
    def limits():
        yield resource.getrlimit(resource.RLIMIT_CPU), resource.getrlimit(resource.RLIMIT_CORE)

    ours = resource.getrlimit(resource.RLIMIT_CPU), resource.getrlimit(resource.RLIMIT_CORE)
    ending, [(cpu, core)] = run(limits, seconds=2.5)
    assert ending is Ending.FINISHED and cpu == (4, 4) and core == (0, 0)
    assert (resource.getrlimit(resource.RLIMIT_CPU), resource.getrlimit(resource.RLIMIT_CORE)) == (
        ours
    )


def test_a_handler_of_the_parents_does_not_run_in_the_child():
    """A gunicorn worker's SIGTERM handler starts a graceful stop; in the child, SIGTERM ends
    the child only."""
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda *_: calls.append(os.getpid()))
    try:

        def produce():
            yield os.getpid()
            os.kill(os.getpid(), signal.SIGTERM)
            yield "after"

        assert run(produce)[0] is Ending.FAILED
        assert calls == []
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_child_dies_with_its_parent_and_lets_its_files_go(tmp_path):
    """Thirty-third review: a worker killed mid-scan left its child blocked for ever writing to
    a pipe nobody read, holding the host's scan slot. A parent that runs a confined step
    (here a throwaway process, killed) takes its child with it, and the slot is free."""
    import subprocess
    import sys
    import textwrap

    from app.core.locks import one_of_slots

    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from pathlib import Path
        from app.core.confined import run_confined
        from app.core.locks import one_of_slots

        def produce():
            while True:
                yield "x" * 10_000  # fills the pipe once the parent stops reading

        with one_of_slots(Path({str(tmp_path)!r}), "scan", 1) as held:
            assert held
            run_confined(produce, lambda record: time.sleep(3600), 3600, 64 * 2**20)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    children: list[int] = []
    while time.monotonic() < deadline and not children:
        children = [pid for pid in descendants(parent.pid) if pid_alive(pid)]
        time.sleep(0.1)
    assert children, "the step never started"
    parent.kill()
    parent.wait()
    while time.monotonic() < deadline and any(pid_alive(pid) for pid in children):
        time.sleep(0.1)
    assert not any(pid_alive(pid) for pid in children)
    with one_of_slots(tmp_path, "scan", 1) as held:
        assert held


def test_a_process_holding_over_1024_files_runs_steps():
    """select(2) refuses descriptors past 1,023: a busy worker's pidfd may be one. The wait
    for an exiting child uses poll(2)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip("this host allows fewer than 2,048 files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        assert run(lambda: iter(["done"])) == (Ending.FINISHED, ["done"])
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert forked_copies() == []
