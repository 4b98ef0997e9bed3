"""Run a step whose cost its input cannot bound in a forked child, confined: a wall-clock
deadline, a cap on the memory it may add, and its results streamed back as it makes them.

A user's regular expression over every page of a wiki is such a step: the regex package's
recursion, fuzzy matching, repeated captures and long literal runs each cost a worker seconds of
CPU it does not time, or gigabytes, and refusing pattern shapes one by one left the next shape
open (twenty-seventh to thirtieth reviews). Here whatever the step does, the worker loses at most
`seconds` of waiting and nothing of its memory: the child is killed at the deadline, its address
space is capped (RLIMIT_AS: an allocation past it fails, a MemoryError), and what it sent before
is kept. The child is forked and reaped through a pidfd (pidfd_open(2): no pid reuse races);
multiprocessing's Pipe carries the records. The child only reads what the parent had in
memory, and no file, lock or database handle is used on both sides.
"""

from __future__ import annotations

import ctypes
import enum
import faulthandler
import logging
import math
import multiprocessing
import os
import resource
import select
import signal
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable

from app.core.errors import Unavailable
from app.core.interrupts import held_off

log = logging.getLogger(__name__)

_MEMORY_EXIT = 3  # the child's exit status once its memory cap stopped it
_FAILED_EXIT = 4  # ... once anything else did (told to the parent first)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# The pidfds of the children forked and not yet reaped, each with the thread that forked it.
_unreaped: dict[int, int] = {}
# Signals a server worker handles its own way (gunicorn's workers: graceful stop, reload); in
# the child they end it, as in any plain process.
_RESET_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")


class Ending(enum.Enum):
    """How a confined step ended."""

    FINISHED = "finished"  # it ran to its end: every record is in
    OUT_OF_TIME = "out of time"  # killed at the deadline: the records sent before it are in
    # Likewise, having had less than half its time on a CPU: the host was busy or the child
    # was held up, so the step's own cost is not known (review 59: a sanitizer's stop).
    STARVED = "starved"
    OUT_OF_MEMORY = "out of memory"  # its memory cap stopped it: likewise
    FAILED = "failed"  # it raised something else, or died of a signal (logged)


class _Failure:
    """The child's last message when its step raised: what it raised, for the parent's log."""

    def __init__(self, text: str):
        self.text = text


def run_confined(
    produce: Callable[[], Iterable[object]],
    collect: Callable[[object], None],
    seconds: float,
    memory_bytes: int,
) -> Ending:
    """Run `produce()` in a forked child and call `collect(record)` in this process for each
    record it yields, as it yields them; return how it ended.

    `seconds` is the wall-clock time this call waits (the child is killed after it);
    `memory_bytes` what the child may map beyond what this process has mapped at the fork
    (RLIMIT_AS), its CPU time is capped at `seconds` rounded up and one more (RLIMIT_CPU, should
    this process die first) and it writes no core file. Records must pickle; each should be
    small (one message each). Only the main thread's state is in the child: `produce` must not
    wait on another thread's lock, and must use no file, socket or database connection this
    process uses (open its own). Raises Unavailable (503, retry after 5 s) if the fork fails
    (the host is out of processes, memory or file descriptors).
    """
    with held_off():
        _reap_left()
    reader, writer = multiprocessing.Pipe(duplex=False)
    parent = os.getpid()
    with held_off():  # no signal's exception between the fork and our hold on the child
        try:
            pid = os.fork()
            if pid == 0:
                _child(reader, writer, parent, produce, seconds, memory_bytes)  # never returns
        except BaseException as error:
            if os.getpid() == parent:  # the fork failed: no child
                reader.close()
                writer.close()
                if isinstance(error, OSError):
                    raise _unavailable(error) from error
            raise
        finally:
            # An exception the child inherited pending must not return it into the code it
            # was forked from.
            if os.getpid() != parent:
                os._exit(_FAILED_EXIT)
        # A pidfd names this child and no other, even once it is reaped (no pid reuse races).
        try:
            child = os.pidfd_open(pid)
        except OSError as error:  # out of file descriptors: the pid is ours until reaped
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            reader.close()
            writer.close()
            raise _unavailable(error) from error
        _unreaped[child] = threading.get_ident()
        writer.close()  # the child's copy is the only writer: its end is our end of file
        deadline = time.monotonic() + seconds
        ending = None
    try:
        while ending is None:
            left = deadline - time.monotonic()
            if left <= 0 or not reader.poll(left):
                with held_off():  # an exception into the read left its file open (CI)
                    starved = _cpu_seconds(pid) < seconds / 2  # alive until _end kills it
                ending = Ending.STARVED if starved else Ending.OUT_OF_TIME
                break
            try:
                record = reader.recv()
            except EOFError:
                break  # the child ended: its exit status says how
            if isinstance(record, _Failure):
                log.warning("confined step failed: %s", record.text)
            else:
                collect(record)
    finally:
        # the child closed its end (ending None): it is exiting; else kill it at once
        with held_off():  # an interrupted wait left a zombie for the worker's life (CI)
            code, killed = _end(child, reader, deadline if ending is None else None)
    ending = ending or (Ending.OUT_OF_TIME if killed else None)
    if ending is not None:
        return ending
    if code == 0:
        return Ending.FINISHED
    if code == _MEMORY_EXIT:
        return Ending.OUT_OF_MEMORY
    if code != _FAILED_EXIT:
        log.warning("confined step ended with status %s", code)
    return Ending.FAILED


def _cpu_seconds(pid: int) -> float:
    """The CPU seconds (user and system) process `pid` has used, from /proc/<pid>/stat (proc(5):
    utime and stime, the 14th and 15th fields); infinity if it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rpartition(")")[2].split()  # the name may hold anything
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return math.inf


def _unavailable(error: OSError) -> Unavailable:
    log.warning("could not start a confined step: %s", error)
    return Unavailable(
        "This server is short of processes or memory for this step: try again shortly.",
        retry_after=5,
    )


def _end(child: int, reader, exiting_until: float | None) -> tuple[int, bool]:
    """Close `reader` (if any), wait for the child (`child`: its pidfd, closed here) to exit
    until the monotonic time `exiting_until` (None: not at all), kill it if it has not, and
    reap it; return (its exit code, or minus the signal that ended it; whether it was killed).
    """
    try:
        if reader is not None:
            reader.close()
        if exiting_until is not None:  # poll(2), not select(2): a worker may hold 1,024 files
            exiting = select.poll()
            exiting.register(child, select.POLLIN)  # readable once the child has ended
            exiting.poll(max(exiting_until - time.monotonic(), 0) * 1000)  # milliseconds
        ended = os.waitid(os.P_PIDFD, child, os.WEXITED | os.WNOHANG)
        killed = ended is None
        if killed:
            signal.pidfd_send_signal(child, signal.SIGKILL)  # at once, whatever it does
            ended = os.waitid(os.P_PIDFD, child, os.WEXITED)
    finally:
        _unreaped.pop(child, None)
        os.close(child)
    if ended.si_code == os.CLD_EXITED:
        return ended.si_status, killed
    return -ended.si_status, killed


def _reap_left() -> None:
    """Kill and reap the children this thread forked and did not reap: an exception raised
    into the few instructions between the fork's held-off block and the reaping's (a signal
    handler that does not hold off) leaves one. A thread runs one confined step at a time, so
    at its start every child of its own is such a one."""
    me = threading.get_ident()
    for child in [child for child, thread in _unreaped.items() if thread == me]:
        _end(child, None, None)


def _child(reader, writer, parent: int, produce, seconds: float, memory_bytes: int) -> None:
    """The child's whole life: confine itself, send what `produce` yields, and exit with a
    status that says how it ended (never returning into the code it was forked from).

    It dies with its parent (PR_SET_PDEATHSIG), and at `seconds` and two more of wall clock
    (SIGALRM) should nothing kill it: a child whose worker was killed mid-scan once blocked
    for ever writing to a pipe nobody read, holding the host's scan slot (which it inherits
    with every other file of the worker's) and its client's socket (thirty-third review)."""
    status = 0
    try:
        # A native library's abort (Rust's, on an allocation past the cap) is an ending the
        # parent logs; the parent's fault handler (pytest's, -X faulthandler) would print a
        # Python traceback of the child into the service's log.
        faulthandler.disable()
        for name in _RESET_SIGNALS:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(math.ceil(seconds) + 2)
        _die_with(parent)
        reader.close()  # ours only: with the parent gone, a write fails instead of blocking
        _confine(seconds, memory_bytes)
        for record in produce():
            writer.send(record)
    except MemoryError:
        status = _MEMORY_EXIT
    except BaseException as error:  # noqa: BLE001 - told to the parent, which logs it
        status = _FAILED_EXIT
        try:
            writer.send(_Failure(f"{type(error).__name__}: {error}"))
        except BaseException:  # noqa: BLE001 - the parent may be gone; the status says it
            pass
    finally:
        try:
            writer.close()
        finally:
            # no atexit handler, finalizer or buffered file of the parent's runs here
            os._exit(status)


def _die_with(parent: int) -> None:
    """Have the kernel kill this (child) process when its parent thread ends; exit at once if
    `parent` (its pid) ended already, before that was asked."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(_FAILED_EXIT)


def _confine(seconds: float, memory_bytes: int) -> None:
    """Cap this (child) process's address space at what it maps now plus `memory_bytes`, its
    CPU time at `seconds` rounded up plus one, and its core files at none."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    _lower(resource.RLIMIT_AS, mapped + memory_bytes)
    _lower(resource.RLIMIT_CPU, math.ceil(seconds) + 1)
    _lower(resource.RLIMIT_CORE, 0)


def _lower(limit: int, value: int) -> None:
    """Set the soft and hard `limit` to `value`, unless the hard one is lower already."""
    _, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(limit, (value, value))
