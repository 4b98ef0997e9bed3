"""Keep a gunicorn worker alive through one long transfer (a git clone or push, a wiki's export)
while it moves.

gunicorn's arbiter kills a sync worker that has not checked in for `timeout` seconds, and a sync
worker checks in only between requests: a clone of a large wiki over a slow link would be cut
off midway. gunicorn's `post_fork` hook (app/gunicorn.conf.py) hands us the worker's `notify`;
`KeepAlive` calls it from a thread, but only while the transfer moves at least `min_rate`
bytes a second and for `longest` seconds at most: a client that stalls, or trickles bytes to
hold a worker, still meets the arbiter's timeout.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from functools import partial

# A transfer keeps its worker past the worker timeout while it moves at least this many bytes a
# second, for this many seconds at most: a 100 MiB wiki clones (or downloads) at 1 MiB/s; a
# stalled or trickling client still meets the timeout.
TRANSFER_MIN_RATE = 32 * 1024
TRANSFER_LONGEST = 15 * 60.0

_notify: Callable[[], None] | None = None
_timeout: float | None = None  # seconds: the arbiter's worker timeout


def tree_cpu(pid: int) -> float:
    """CPU seconds used by process `pid` and every process under it (running ones, and the
    ended ones it waited for); 0.0 for what /proc cannot tell (it ended meanwhile)."""
    total = 0.0
    for current in process_tree(pid):
        fields = _stat_fields(f"/proc/{current}/stat")
        try:
            total += sum(int(value) for value in fields[11:15]) / _TICKS
        except (ValueError, IndexError):
            continue
    return total


def _stat_fields(path: str) -> list[str]:
    """The fields of a /proc `stat` file after the command's name (proc(5): the first is the
    state); [] for one that cannot be read (its process ended)."""
    try:
        with open(path) as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def process_tree(pid: int) -> list[int]:
    """`pid` and every process under it that runs now (/proc's children lists); [pid] where
    /proc cannot tell."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as listing:
                    pending.extend(int(child) for child in listing.read().split())
        except (OSError, ValueError):
            continue
    return found


def kill_trees(roots: Iterable[int]) -> None:
    """Kill (SIGKILL) each process of `roots` with every process under it. Raises nothing: one
    that ended meanwhile is passed over."""
    for root in roots:
        for pid in process_tree(root):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue


def kill_children() -> None:
    """Kill every process this one started, with every process under each (kill_trees)."""
    kill_trees(process_tree(os.getpid())[1:])


_TICKS = os.sysconf("SC_CLK_TCK")


# The scheduling policy and nice value the worker's helper threads run at: a thread inherits
# its maker's, and the threads that check a transfer's worker in are made by requests that may
# run lowered (app.wiki.turns). Starved under SCHED_IDLE on a busy host, they let a clone that
# moved steadily be killed by the worker timeout.
_base_priority: tuple[int, int] | None = None


def install(notify: Callable[[], None], timeout: float | None = None) -> None:
    """Remember this worker process's check-in call (gunicorn's `Worker.notify`), its
    `timeout` (seconds), and the priority it runs at (its helper threads' own, whatever
    their maker's)."""
    global _notify, _timeout, _base_priority
    _notify, _timeout = notify, timeout
    _base_priority = os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)


def helper_thread(
    target: Callable[..., object],
    *args,
    priority: tuple[int, int] | None = None,
    name: str | None = None,
) -> threading.Thread:
    """A daemon thread (not started) running `target(*args)` at `priority` (scheduling policy,
    nice), by default the worker's own (as install() found it; its maker's outside gunicorn),
    not at its maker's, which may be lowered."""
    priority = priority or _base_priority

    def run() -> None:
        if priority is not None:
            set_priority(0, *priority)  # may not raise it back (no RLIMIT_NICE): runs as its maker
        target(*args)

    return threading.Thread(target=run, name=name, daemon=True)


def set_priority(pid: int, policy: int, nice: int) -> None:
    """Put the process or thread `pid` (0: the calling thread) under scheduling `policy`
    (os.SCHED_*) at `nice`; nothing if it has ended or may not be raised back (sched(7))."""
    try:
        os.sched_setscheduler(pid, policy, os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except OSError:
        pass


class KeepAlive:
    """Check the worker in every `every` seconds while the client takes enough bytes (what
    `moved` reports handed over, less what still waits unacknowledged in `sock`), or while the
    transfer waits for this host's CPU rather than for its client.

    `longest` (seconds) bounds the whole transfer; `min_rate` (bytes a second) is the least
    progress that counts. Does nothing outside gunicorn (no check-in call was installed).
    `sock` (the request's socket, if given) is shut when too little moved for so long that
    the worker timeout would come first. `start()` from the thread that moves the bytes,
    `watch(pid)` a process working for it (git), call `moved(n)` as bytes go through, `stop()`
    at the end (idempotent; threads may call `moved`).

    A transfer is held up here when that thread or a watched process is runnable (state R in
    /proc: running, or waiting for a core) at both of a beat's two looks: a heavy request runs
    under SCHED_IDLE (app.wiki.turns), and on a busy host its steady reader was cut as if it
    had stalled (CI, 4 December). One blocked on its client (a full socket or pipe) sleeps.
    """

    def __init__(self, longest: float, min_rate: int, every: float = 2.0, sock=None):
        self.longest = longest
        self.every = every
        self.sock = sock
        self.min_bytes = int(min_rate * every)
        self._moved = 0
        self._stopped = threading.Event()
        self._thread: int | None = None  # the native id of the thread moving the bytes
        self._processes: list[int] = []

    def start(self, moving: bool = False) -> KeepAlive:
        """Begin checking in (from a thread); `moving`: the transfer has moved already, so
        check in at once too (a response whose first piece went out after a long compute
        was killed before the first check-in, `every` seconds on). Returns self."""
        self._thread = threading.get_native_id()
        notify = _notify
        if notify is not None:
            if moving:
                notify()
            helper_thread(self._beat, notify).start()
        return self

    def moved(self, count: int) -> None:
        self._moved += count  # a running total; a lost update between threads delays a check-in

    def watch(self, pid: int) -> KeepAlive:
        """Count process `pid` (and those under it) as working for the transfer: while one is
        runnable, the transfer waits for this host, not for its client. Returns self."""
        self._processes.append(pid)
        return self

    def _beat(self, notify: Callable[[], None]) -> None:
        quiet_since = time.monotonic()
        moved, queued = self._moved, self._queued()
        for _ in range(int(self.longest / self.every)):
            held_here = True
            for _look in range(2):
                if self._stopped.wait(self.every / 2):
                    return
                held_here = self._runnable() and held_here
            # What the client took meanwhile: what the worker handed the socket, less what of
            # it still waits there. A send blocked on a full socket buffer (4 MB) returns only
            # once about half of it drained: a client reading steadily at 400 KB/s moved
            # nothing for 5 s by the worker's count, and was cut (CI, 4 December).
            moved_before, queued_before = moved, queued
            moved, queued = self._moved, self._queued()
            if moved - moved_before + queued_before - queued >= self.min_bytes or held_here:
                notify()
                quiet_since = time.monotonic()
            elif self._should_cut(quiet_since):
                self._cut()
                return

    def _queued(self) -> int:
        """Bytes written to the request's socket that its client has not acknowledged yet
        (SIOCOUTQ, tcp(7) and unix(7)); 0 without a socket, or once it is closed."""
        if self.sock is None:
            return 0
        try:
            answer = fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, bytes(4))
        except (OSError, ValueError):
            return 0
        return struct.unpack("i", answer)[0]

    def _runnable(self) -> bool:
        """Whether the thread that started this, or a task of a watched process or one under
        it, is runnable now (/proc's state R)."""
        stats = [f"/proc/self/task/{self._thread}/stat"] if self._thread else []
        for pid in self._processes:
            for current in process_tree(pid):
                try:
                    tasks = os.listdir(f"/proc/{current}/task")
                except OSError:
                    continue
                stats += [f"/proc/{current}/task/{task}/stat" for task in tasks]
        return any(_stat_fields(path)[:1] == ["R"] for path in stats)

    def _should_cut(self, quiet_since: float) -> bool:
        """Whether the transfer has moved too little for so long that the arbiter's timeout
        comes before the next beat could save it."""
        if self.sock is None or _timeout is None:
            return False
        return time.monotonic() - quiet_since >= max(self.every, _timeout - 2 * self.every)

    def _cut(self) -> None:
        """End the transfer by its socket, before the arbiter kills the worker: three exports
        read at 16 KB/s got three workers killed at once, and their reboots stalled other
        tenants (twenty-fourth review). The worker's read or send fails, and it goes on."""
        shut(self.sock, socket.SHUT_RDWR)

    def moving_while(self, running: Callable[[], bool]) -> KeepAlive:
        """Count the transfer as moving whenever `running()` says so (asked every `every` / 2
        seconds, from a thread, until stop()): a push whose body is in waits for git, which
        sends nothing while it takes the push in. `longest` still bounds it. Returns self."""

        def report() -> None:
            while not self._stopped.wait(self.every / 2):
                if running():
                    self.moved(self.min_bytes)

        helper_thread(report).start()
        return self

    def stop(self) -> None:
        self._stopped.set()


# Bytes of a response handed to the server at once. A conflict page of 4.6 MB went out as one
# chunk, so nothing counted it as moving until all of it was out, and a steady reader's worker
# was killed (twenty-second review). In pieces, each one the server took counts.
PIECE = 64 * 1024


class Counted:
    """Yield `chunks` (a response body) in pieces of at most PIECE bytes, calling `moved(n)` for
    each once the server took it.

    `begin()`, if given, is called once, when the first piece has been taken and another is
    asked for: a response of one piece (most) never starts what a long one needs. Closing it
    closes `chunks` too, even before the first chunk was asked for (a generator's `finally`
    would not run then): whatever makes them (a git process, Otterwiki's response and its
    clean-up) is ended at once. `done()`, if given, is called once, when it is closed.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        moved: Callable[[int], None],
        done: Callable[[], None] | None = None,
        begin: Callable[[], object] | None = None,
    ):
        self._chunks = iter(chunks)
        self._close = getattr(chunks, "close", None)
        self._moved = moved
        self._done = done
        self._begin = begin
        self._last = 0  # bytes of the piece handed out last, counted when the next is asked for
        self._long = memoryview(b"")  # the rest of a chunk longer than PIECE

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        went_out = self._last
        if went_out:
            self._moved(went_out)
            self._last = 0
        if self._long:
            piece, self._long = bytes(self._long[:PIECE]), self._long[PIECE:]
        else:
            piece = next(self._chunks)
            if len(piece) > PIECE:
                self._long = memoryview(piece)[PIECE:]
                piece = piece[:PIECE]
        if went_out and self._begin is not None:
            begin, self._begin = self._begin, None
            begin()  # one piece is out and another follows: a long response
        self._last = len(piece)
        return piece

    def close(self) -> None:
        """Close `chunks` (and call `done`). Safe to call again."""
        close, self._close = self._close, None
        done, self._done = self._done, None
        self._begin = None
        try:
            if close is not None:
                close()
        finally:
            if done is not None:
                done()


def kept_alive(chunks: Iterable[bytes], sock=None) -> Counted:
    """`chunks` (a response body) under a KeepAlive counting each piece once the server took
    it, from its second piece on (a short response starts no thread), closed as Counted
    closes; `sock` (gunicorn's socket of the request, if any) is cut before the worker
    timeout when the reader moves too little."""
    keepalive = KeepAlive(TRANSFER_LONGEST, TRANSFER_MIN_RATE, sock=sock)
    return Counted(chunks, keepalive.moved, keepalive.stop, partial(keepalive.start, moving=True))


def shut(sock, how: int) -> None:
    """Shut `sock` (socket.SHUT_RD or SHUT_RDWR): the worker's read or send on it ends."""
    try:
        sock.shutdown(how)
    except OSError:
        pass  # gone already


# Seconds a finished connection waits for its client to close: gunicorn's own graceful close
# (RFC 9112 9.6) waits 2 s, in the sync worker, and clients that read the answer and kept the
# socket open held every worker 2 s each (twenty-fifth review). A client on a slow network
# closes within a round trip; one that does not is closed on anyway.
CLOSE_LINGER = 0.25


def close_connection(sock) -> None:
    """Close the client connection `sock` (None: nothing to do) as gunicorn's close_graceful
    does, sending FIN and reading what the client still sends so the kernel sends no RST that
    cuts the answer short, but for CLOSE_LINGER seconds at most. Called once the response is
    out (gunicorn's post_request); gunicorn's own close then finds it closed."""
    if sock is not None:
        from gunicorn.util import close_graceful

        close_graceful(sock, timeout=CLOSE_LINGER)
