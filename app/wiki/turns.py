"""Each owner's requests take turns, and an owner who takes more than a share runs below the rest.

One pool of sync workers on a few cores serves every wiki. Clients hammering one wiki, or one
client on each of several wikis of one owner, used to keep several workers computing that
owner's pages at once, and every other tenant's views waited for a core. The tenant here is a
wiki's owner: all the wikis of one owner share its turns and debts (one client on each of two
wikis of one owner is as much a crowd as two clients on one). Here:

- Turns: an owner's wikis compute at most `turns` requests at a time across all workers
  (ROBOT_WIKI_CONCURRENCY, by default half the cores). A request that finds them all taken
  waits for one (at most WAIT seconds) if a waiting place is free (as many as there are turns);
  when its wait runs out, it runs at once, unless its owner is in debt (below): then it is
  refused with 429 and Retry-After, so a crowd cannot hold every worker. A request that finds
  no waiting place is refused at once: a crowd arriving at once owes nothing yet, and held
  every worker (four anonymous views of a costly page; six editors one member opened).
  A run without a turn counts as crowding, as a wait does. A request that had to wait runs at
  the lowest priority (below), whatever its owner owes: it is one of a crowd. Two clients
  taking turns on one owner's costly pages each waited out the other's view, so the owner's
  one turn kept a core busy at full priority while its crowd debt, a wait's worth at a time,
  never passed DEBT_LOW, and another tenant's p99 was twice its own alone.
- Debt: the time an owner's requests spent waiting for a turn (crowd debt) and the CPU time
  of its heavy requests (over HEAVY_CPU each; CPU debt) count DEBT_WEIGHT times against it
  and drain in real time. While either is over DEBT_LOW, the owner's requests run at nice
  LOW_NICE under SCHED_IDLE from the moment their wiki is known, so the kernel gives any
  other tenant's request the core first; while its crowd debt is over DEBT_REFUSE, requests
  that find no turn are refused. A browser loading a page and its images waits a little and
  stays clear of both; clients that keep an owner's turns busy, or one client rendering costly
  pages or deep histories back to back, do not.
- Heavy requests: a request whose own CPU and its git processes' has passed HEAVY_CPU runs at
  LOW_NICE for the rest of its run, with those git processes and any it starts later, whatever
  its owner owes: its first tenth of a second is as anyone's, the seconds of a first render of
  a costly page or of a deep history come after every cheap request (the multilevel feedback
  queue of CPU schedulers, applied to requests). A thread of the worker's checks, from
  HEAVY_CPU after arrival, every WATCH_TICK, whatever the request's own thread is blocked in;
  requests that end sooner are never checked. (A SIGALRM timer did this before: a request
  blocked in a read of git computing a pack in silence ran its check only once git wrote,
  the read being restarted, and the signal could land on another thread.) Debts carry this
  to the owner's next requests. The git processes a worker keeps across requests (GitPython's
  `cat-file --batch`) are put back with the worker.
- Pools: each of an owner's wikis' members (callers with a role in it) have turns and debts of
  their own, and so has the owner, at all their wikis; everyone else (anonymous readers of
  public wikis, people signed in who are no members) shares the owner's visitors' pool. Two
  anonymous clients crowding a public wiki lower and refuse each other, never its owner, and a
  viewer the owner let into one wiki crowds only that wiki's members. Before sign-in a request
  runs as any of its pools' debts say; a member's is put back if its own pool owes nothing.
- Bulk transfers (git clone, fetch and push, exports) take a turn of the caller's pool once
  the caller is known, as views do, and run low as views do once heavy: five anonymous clone
  loops on one public wiki once held every worker, and every tenant's views waited 15 s. Their
  turn is held while git computes and the answer goes out at the server's pace, and handed on
  once the answer goes out slowly (app.wiki.sends): a client reading slowly holds a slow-send
  place then, never its pool's turn. A client's next request (upload-pack after info/refs)
  finds the turn free, or waits for it as any request does. A transfer used to run at
  LOW_NICE from its start, and a clone's cheap info/refs, starved by other tenants' work after
  its last byte, held its pool's turn past the client's next request's wait.
  Attachment downloads take no turn: a page's images come all at once. Nor do Otterwiki's
  own files, the platform's scripts and the favicon (app.wiki.static): a browser fetches them
  beside every page, and a page's MathJax, refused while the page held its pool's turn, left
  the page without math.

Turns are flock(2) locks on files in the owner's folder (Settings.owner_turns_dir, under the
run dir): shared by every worker, released by the kernel if a worker dies. A debt is the mtime
of a file (CROWD is the first turn file, CPU the first waiting place): the wall-clock time until
which it runs; one further than DEBT_MAX ahead was set before the clock stepped back and counts
as none. Its read-modify-write takes a lock of its own.

Lowering a process's priority is allowed to anyone; raising it back needs root or an
RLIMIT_NICE of 20 (systemd: LimitNICE=+0), so where neither holds, owners take turns without
the priority change. If the turn files cannot be opened, the request runs without a turn.
"""

from __future__ import annotations

import fcntl
import logging
import os
import resource
import select
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import TooManyRequests
from app.core.errors import Unavailable
from app.core.identity import Caller
from app.core.locks import BUSY_RETRY
from app.core.store import Wiki
from app.web.bodies import SlowPlaces
from app.web.heartbeat import KeepAlive
from app.web.heartbeat import helper_thread
from app.web.heartbeat import kill_trees
from app.web.heartbeat import process_tree
from app.web.heartbeat import set_priority
from app.web.heartbeat import tree_cpu

log = logging.getLogger("robot.wiki")

# The WSGI environ key of a request's Turn (app.wiki.gateway puts it there, closes it with
# the response).
TURN_KEY = "robot.turn"

# Seconds a request waits for its owner's turn before running anyway (or being refused).
WAIT = 1.0
# Each second of waiting or of a heavy request's CPU adds this many seconds of debt.
DEBT_WEIGHT = 2.0
# Seconds of debt above which an owner's requests run at the lower priority: a page with a dozen
# images waits well under this in all.
DEBT_LOW = 0.5
# Seconds of crowd debt above which requests that find no turn are refused: the owner's turns
# have been kept busy for a second or more (a net second of debt per second of crowding).
DEBT_REFUSE = 1.5
# Most debt an owner can have, in seconds: how long it stays low after it stopped.
DEBT_MAX = 3.0
# CPU seconds above which a request counts as heavy (its CPU goes to its owner's debt); a small
# page takes about 5 ms, a page from the render cache under 10 ms, a first render up to the
# render budget (2 s).
HEAVY_CPU = 0.1
# Seconds between checks of a running request's CPU, after the first at HEAVY_CPU.
WATCH_TICK = 0.05
# Seconds a request's end waits, in all, for the git processes stop_children() killed to end
# (SIGKILL ends one at once unless it is in an uninterruptible wait on the disk).
REAP_SECONDS = 1.0
# The lowest priority: CFS gives nice 0 about 70 times the CPU of nice 19. A lowered request
# also runs under SCHED_IDLE (sched(7)): any other task that wakes takes its core at once, and
# a core running only such work counts as idle to a waking task. At nice 19 alone, another
# tenant's request that woke waited out the lowered one's slice (EEVDF keeps a running task's
# slice), and the p99 of its views while a pathological page was hammered was ~25 % longer.
# The nice value stays for what follows it, such as I/O priority.
LOW_NICE = 19
LOW_POLICY = os.SCHED_IDLE
# Seconds a refused client is told to wait before it tries again.
RETRY_AFTER = 1
# Seconds a request waits for a wiki's write lock (held by a push, or another write): well
# inside the worker timeout, which the wait keeps at bay anyway (waiting_for_write_lock).
WRITE_WAIT = 10.0
# Pauses between tries for a turn (seconds): short first, as most turns end within milliseconds.
_FIRST_PAUSE = 0.0001
_LONGEST_PAUSE = 0.002


class WikiBusy(TooManyRequests):
    """The wiki's owner is in debt and has no turn or place left: try again in RETRY_AFTER
    seconds."""

    def __init__(self, message: str):
        super().__init__(message, retry_after=RETRY_AFTER)


def can_restore_priority() -> bool:
    """Tell whether this process may raise its priority back after lowering it: from nice 19,
    and from SCHED_IDLE to the policy it had (sched(7): both need root or an RLIMIT_NICE
    that allows the nice value)."""
    if os.geteuid() == 0:
        return True
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    return soft == resource.RLIM_INFINITY or 20 - soft <= base


# The files whose mtimes hold a pool's two debts, and the lock their updates take.
CROWD, CPU = "turn-0.lock", "wait-0.lock"
DEBT_LOCK = "debt.lock"
# Folders, in an owner's, of pools of turns and debts apart from the visitors' (the owner's
# folder itself: anonymous readers of public wikis, people signed in who are no members):
# MEMBERS/<wiki> for each wiki's members, OWNER for the owner, at all their wikis. A crowd of
# visitors never refuses or lowers members, and the members of one wiki (a viewer the owner
# let in) never the owner, nor another wiki's members.
MEMBERS = "members"
OWNER = "owner"


def _in_debt(pool_dir: Path) -> bool:
    return max(debt(pool_dir, CROWD), debt(pool_dir, CPU)) > DEBT_LOW


def debt(owner_dir: Path, kind: str) -> float:
    """Seconds of `kind` (CROWD or CPU) debt the owner whose folder is `owner_dir` has now
    (0.0: none)."""
    try:
        return _owed((owner_dir / kind).stat().st_mtime, time.time())
    except OSError:
        return 0.0  # an owner none of whose wikis ever had a request


def _owed(until: float, now: float) -> float:
    """Seconds from `now` to a debt's end `until`; none if past, or impossibly far (a debt
    written before the wall clock stepped back)."""
    owed = until - now
    return owed if 0.0 < owed <= DEBT_MAX + 1.0 else 0.0


def add_debt(owner_dir: Path, kind: str, seconds: float) -> None:
    """Count `seconds` (of waiting, or CPU) against the owner's `kind` debt, DEBT_WEIGHT times,
    up to DEBT_MAX.

    The read and the write happen under DEBT_LOCK in the pool's folder (flock(2), shared by
    every worker): two workers adding at once once lost one of the two.
    """
    path = owner_dir / kind
    try:
        fd = os.open(owner_dir / DEBT_LOCK, os.O_RDONLY | os.O_CREAT, 0o640)
    except OSError:
        return  # an unwritable folder (see Turn.take): nothing to count against
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        now = time.time()
        if not path.exists():
            path.touch()  # a debt file no request has opened yet (CPU: only waiters open it)
        until = now + _owed(path.stat().st_mtime, now) + DEBT_WEIGHT * seconds
        until = min(until, now + DEBT_MAX)
        os.utime(path, (until, until))
    except OSError:
        pass
    finally:
        os.close(fd)  # and with it the lock


class Turn:
    """One request at its owner's wikis: the priority it runs at (`lowered`) and the turn it
    holds.

    Made by Turns.enter(); take() takes the turn, end_turn()
    hands it on, close() ends all and counts the request's CPU against its owner if heavy.
    """

    def __init__(self, turns: Turns, owner_dir: Path, members_dir: Path):
        self._turns = turns
        self.entered: tuple[Path, str | None] = (owner_dir, None)  # as Turns.enter() was told
        self._owner_dir = owner_dir  # its pool: the visitors' until as_member()
        self._pools = (owner_dir, members_dir, owner_dir / OWNER)
        self._lowered_on_arrival = False
        self._kept_pids: set[int] = set()  # the worker's children when it was lowered
        self._lowered_pids: set[int] = set()  # children lowered with it
        self._fds: list[int] = []
        # end_turn() may come from the slow-send watcher's thread (app.wiki.sends) while this
        # request's own thread ends it too: each turn file is closed once.
        self._ending = threading.Lock()
        self._started = time.process_time()
        self._children_started = _children_cpu()
        self._arrived = _boot_ticks()  # git processes started from here on are this request's
        # ... but for those already running: the clock counts in ticks of 10 ms, and the cat-file
        # processes the last request started for another wiki may have started in this one.
        self._present = _child_pids()
        self._stopped: list[int] = []  # pidfds of the processes stop_children() killed
        self._stopping = threading.Lock()  # the watcher's thread kills; the request's reaps
        self._beyond_turns: float | None = None  # when it went on without a turn (monotonic)
        # The priority to put back, read per request (an operator may renice a worker). Not
        # read when lowering: a check landing inside _lower() would read the low one.
        self._base = os.getpriority(os.PRIO_PROCESS, 0)
        self._base_policy = os.sched_getscheduler(0)
        self._thread = threading.get_native_id()  # the request's: the watcher lowers it
        self._maker = threading.current_thread()  # alive while that thread id is its own
        # The watcher's thread lowers while the request's own may put back (as_member, close).
        self._priority = threading.RLock()
        self.lowered = False

    @property
    def pool(self) -> Path:
        """The folder of the pool the request runs in (the visitors' until as_member())."""
        return self._owner_dir

    @property
    def tenancy(self) -> Path:
        """The folder of the request's owner, shared by all the pools of the owner's wikis."""
        return self._pools[0]

    @property
    def visitor(self) -> bool:
        """Whether the request runs in the visitors' pool: no member of the wiki (yet)."""
        return self._owner_dir == self._pools[0]

    def lower_on_arrival(self) -> None:
        """Run at LOW_NICE from now on if any pool the request may join (visitors, the wiki's
        members, the owner) is in either debt: who is asking is not known yet."""
        if any(_in_debt(pool) for pool in self._pools):
            self._lower()
            self._lowered_on_arrival = self.lowered

    def as_member(self, owner: bool = False) -> None:
        """The caller is a member of the wiki (with `owner`, its owner): take the wiki's
        members' turns (the owner's own) before take(), and run as their debts say, whatever
        the other pools owe."""
        self._owner_dir = self._pools[2 if owner else 1]
        if self._lowered_on_arrival and not _in_debt(self._owner_dir):
            self._restore()
        self._lowered_on_arrival = False

    def take(self) -> None:
        """Take one of the owner's turns: wait up to Turns.wait if a waiting place is free,
        and go on without one when the wait runs out. A request that waited runs at LOW_NICE
        from then on (one of a crowd), whatever its owner owes.

        Raises WikiBusy when no waiting place is free, or when no turn came and the pool's
        crowd debt, before this request waited, is over DEBT_REFUSE.
        """
        turns = self._open("turn")
        if not turns:
            return  # no turn files: run without (logged by _open)
        if _lock_one(turns) is not None:
            return  # free at once: enter() has already read the debts
        # Refused by what the pool owed before this request waited: one full wait adds more
        # than DEBT_REFUSE, and an owner's view waiting out its own export's turn was refused.
        owed = debt(self._owner_dir, CROWD)
        waiting = _lock_one(self._open("wait"))
        if waiting is None:
            # A crowd arriving at once owes nothing yet: four anonymous views of a costly
            # page, run at once, held every worker, and every tenant waited 28 s; six editors
            # one member opened at once did the same for 2-4 s (sixteenth review).
            whose = "visitors'" if self.visitor else "your"
            raise WikiBusy(
                f"this wiki is answering as many of {whose} requests as it may at once; try "
                "again in a moment"
            )
        started = time.monotonic()
        try:
            got = self._turns.wait_for(turns)
        finally:
            fcntl.flock(waiting, fcntl.LOCK_UN)
        add_debt(self._owner_dir, CROWD, time.monotonic() - started)
        self._lower()
        if got:
            return
        if owed > DEBT_REFUSE:
            raise WikiBusy(
                "this wiki is answering too many requests at once (counted with its owner's "
                "other wikis); try again in a moment",
            )
        self._beyond_turns = time.monotonic()  # its whole run counts as crowding (close())

    def end_turn(self) -> None:
        """Hand the turn to the owner's next request; the priority stays (a response may still
        be going out, at the priority it was computed at). Safe to call again, from any
        thread."""
        with self._ending:
            fds, self._fds = self._fds, []
            beyond, self._beyond_turns = self._beyond_turns, None
        for fd in fds:
            os.close(fd)  # and with the last one, the lock
        if beyond is not None:  # its run, not the sending of its response
            add_debt(self._owner_dir, CROWD, time.monotonic() - beyond)

    def close(self) -> None:
        """End the turn, count a heavy request's CPU (its git processes' too) against its
        owner, and put this process's priority back. Safe to call again."""
        _WATCHER.forget(self)
        self.end_turn()
        self.reap_stopped()  # before its CPU is read: the killed git's counts as this request's
        # Its own CPU and its ended git runs': reading every kept child's would cost each
        # request a /proc read per wiki its worker has open.
        spent = time.process_time() - self._started + _children_cpu() - self._children_started
        self._started, self._children_started = time.process_time(), _children_cpu()
        self._arrived = _boot_ticks()
        if spent > HEAVY_CPU:
            add_debt(self._owner_dir, CPU, spent)
        self._restore()

    def cpu_spent(self) -> float:
        """CPU seconds this request has used so far: its own, and that of the git processes
        it started (ended, or still running)."""
        own = time.process_time() - self._started
        ended = _children_cpu() - self._children_started
        running = sum(c.cpu for c in self._own_children())
        return own + ended + running

    def _own_children(self) -> list[_Child]:
        """The running children (_children()) this request started."""
        return [
            child for child in _children(passing=self._present) if child.started >= self._arrived
        ]

    @contextmanager
    def cpu_limit(self, seconds: float, over: Callable[[], None]):
        """While inside, once this request and the git processes it started have used
        `seconds` more CPU seconds (checked every WATCH_TICK), call `over()` and then kill
        those git processes (stop_children), both from the watcher's thread, at most once.
        A worker's CPU timer does not see its git processes: a `git blame` of a deep history
        ran 22 s while its worker waited, and outlived the worker gunicorn killed (review 41).
        """
        limit = self.add_limit(seconds, over)
        try:
            yield
        finally:
            self.remove_limit(limit)

    def add_limit(
        self, seconds: float, over: Callable[[], None], wall_seconds: float | None = None
    ) -> object:
        """cpu_limit's start, for a limit that ends elsewhere: returns what remove_limit()
        takes. With `wall_seconds`, it passes too once that many seconds of wall clock have
        gone by (a lowered request's git gets little CPU on a busy host, and held its worker
        until gunicorn killed it). Limits nest: each is counted from its own start and stops
        once."""
        until = None if wall_seconds is None else time.monotonic() + wall_seconds
        return _WATCHER.limit(self, self.cpu_spent() + seconds, over, until)

    def remove_limit(self, limit: object) -> None:
        """End a limit add_limit() started: once this returns, its `over` is not called."""
        _WATCHER.unlimit(self, limit)

    def stop_children(self) -> None:
        """Kill (SIGKILL) the git processes this request started that still run, each with
        every process under it, and keep each for reap_stopped(). Raises nothing (one that
        ended meanwhile is passed over). From any thread."""
        for child in self._own_children():
            try:
                handle = os.pidfd_open(child.pid)  # this one, even once it is reaped
            except OSError:
                continue  # reaped meanwhile, or out of file descriptors: killed, not kept
            with self._stopping:
                self._stopped.append(handle)
            under = process_tree(child.pid)[1:]  # read first: once it dies, they are init's
            try:
                signal.pidfd_send_signal(handle, signal.SIGKILL)
            except OSError:
                pass  # ended meanwhile
            kill_trees(under)

    def reap_stopped(self, seconds: float = REAP_SECONDS) -> None:
        """Wait up to `seconds` in all for the processes stop_children() killed to end, and
        reap those their owner has not. A GitPython read stopped mid-answer drops its Popen
        unwaited: its git stayed a zombie until the worker's next process started, in
        another wiki's request, whose CPU its own then counted (review 47: a false 503 there,
        its verdict kept). From the request's thread, once its code is done with them."""
        with self._stopping:
            handles, self._stopped = self._stopped, []
        deadline = time.monotonic() + seconds
        for handle in handles:
            try:
                ending = select.poll()  # readable once the process has ended
                ending.register(handle, select.POLLIN)
                ending.poll(max(deadline - time.monotonic(), 0) * 1000)  # milliseconds
                os.waitid(os.P_PIDFD, handle, os.WEXITED | os.WNOHANG)
            except ChildProcessError:
                pass  # its owner reaped it
            finally:
                os.close(handle)

    def _open(self, name: str) -> list[int]:
        """Open (creating) the owner's `name-N.lock` files; [] if that fails (logged)."""
        opened = []
        try:
            for n in range(self._turns.turns):
                path = self._owner_dir / f"{name}-{n}.lock"
                opened.append(os.open(path, os.O_RDONLY | os.O_CREAT, 0o640))
        except OSError as error:
            log.warning("running without a turn: cannot open %s (%s)", error.filename, error)
            for fd in opened:
                os.close(fd)
            return []
        self._fds.extend(opened)
        return opened

    def _restore(self) -> None:
        """Put back the priority this request found, its worker's children's too (a kept
        `cat-file --batch` it started serves the next requests)."""
        with self._priority:
            if not self.lowered:
                return
            set_priority(self._thread, self._base_policy, self._base)
            for pid in (_child_pids() - self._kept_pids) | self._lowered_pids:
                set_priority(pid, self._base_policy, self._base)
            self._lowered_pids = set()
            self.lowered = False

    def _lower(self, with_children: bool = False) -> None:
        """Run at LOW_NICE until close(); with `with_children`, the git processes this
        request started and that still run, too. From the request's thread or the watcher's."""
        with self._priority:
            if not self._turns.lower or self.lowered:
                return
            set_priority(self._thread, LOW_POLICY, self._base + LOW_NICE)
            self.lowered = True
            self._kept_pids = _child_pids()  # those started from here on run low (inherited)
            if with_children:
                # Each with what it started: git http-backend's receive-pack or upload-pack,
                # and the push rules under it, were started before and kept their priority.
                for child in self._own_children():
                    for pid in process_tree(child.pid):
                        set_priority(pid, LOW_POLICY, self._base + LOW_NICE)
                        self._lowered_pids.add(pid)


class Turns:
    """Per-owner turns shared by every worker on the host, and the priority they decide.

    `turns`: requests an owner's wikis may compute at once (as many may wait); `wait`: seconds
    a request waits for a turn; `lower`: whether owners in debt and heavy requests run at
    LOW_NICE (default: when it can be undone).
    """

    def __init__(self, turns: int, wait: float = WAIT, lower: bool | None = None):
        self.turns = turns
        self.wait = wait
        self.lower = can_restore_priority() if lower is None else lower
        self._made: set[Path] = set()  # owner folders this process made or found

    def enter(self, owner_dir: Path, wiki: str | None = None) -> Turn:
        """A request for wiki `wiki` (a slug; None: one members' pool for all the owner's
        wikis) of the owner whose folder is `owner_dir` (made if missing) arrives: lowered at
        once if a pool it may join is in debt, so all its work (sign-in, Otterwiki) runs low.
        Call take() for a turn, and close() in the end."""
        members_dir = owner_dir / MEMBERS / wiki if wiki else owner_dir / MEMBERS
        if members_dir not in self._made and all(
            _make_folder(folder) for folder in (members_dir, owner_dir / OWNER)
        ):
            self._made.add(members_dir)
        turn = Turn(self, owner_dir, members_dir)
        turn.entered = (owner_dir, wiki)
        turn.lower_on_arrival()
        if self.lower:
            _WATCHER.watch(turn)
        return turn

    @contextmanager
    def turn(self, owner_dir: Path):
        """Hold a turn of the owner whose folder is `owner_dir` while inside; yields the Turn.
        Raises WikiBusy as take() does."""
        turn = self.enter(owner_dir)
        try:
            turn.take()
            yield turn
        finally:
            turn.close()

    def wait_for(self, turns: list[int]) -> bool:
        """Wait up to `self.wait` seconds to lock one of `turns`; return whether it was."""
        deadline = time.monotonic() + self.wait
        pause = _FIRST_PAUSE
        while time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(2 * pause, _LONGEST_PAUSE)
            if _lock_one(turns) is not None:
                return True
        return False


class WriteWaits:
    """The host's places to wait for a wiki's write lock (held by a push, or another write):
    one per pool of callers (app.wiki.turns: a wiki's members, its owner), all but one of
    `places` for all of one owner's pools together (at least one, counted in the owner's slots
    with its slow transfers: SlowPlaces.take), and `places` in all.

    The host's places are some of the slow-transfer places (app.web.bodies.SlowPlaces, in
    `folder`, with a pool file of their own), so lock waits, slow bodies and slow sends
    together never hold every worker: counted apart, two lock waits and three slow bodies held
    all four (twenty-first review). An owner's pools never take the last place, so another
    owner's write finds one: one owner's writes looping on two locked wikis refused another's
    saves (twenty-first review). On a host of four workers an owner's pools wait one at a time,
    and never while they hold two slow transfers (twenty-second review).

    Taken before the request's turn, so a write waiting for the lock holds no turn: the
    owner's views were refused 429 while the owner's write waited for a member's push
    (twentieth review). Before that, eight writes to a wiki whose lock a long push held kept
    every worker for 20 s (seventeenth review).
    """

    def __init__(self, folder: Path, places: int):
        self._places = SlowPlaces(folder, places, pool_file="write-wait.lock")

    @contextmanager
    def waiting(self, turn: Turn | None):
        """Hold a place to wait for a write lock, for the request whose turn is `turn` (None:
        no pool or owner limit), with the worker checked in meanwhile (app.web.heartbeat: a
        20 s wait begun late in the worker's check-in period got it killed mid-request).
        Raises Unavailable (503, Retry-After: BUSY_RETRY) at once if its pool holds its
        place already, its owner's pools hold their share, or none is free."""
        if turn is None:
            place = self._places.take()
        else:
            place = self._places.take(turn.pool, owner=turn.tenancy)
        if place is None:
            raise Unavailable(
                "the wiki is busy with another edit, and there is no place left to wait for it "
                "(slow uploads, downloads and waiting writes, of this owner's wikis or on this "
                "server, hold them); try again in a moment",
                retry_after=BUSY_RETRY,
            )
        keep_alive = KeepAlive(WRITE_WAIT * 2, 1).moving_while(lambda: True).start()
        try:
            yield
        finally:
            keep_alive.stop()
            place.free()


class _Watcher:
    """A thread of this process's that lowers each watched request, with its git processes,
    once they have used HEAVY_CPU: checked from HEAVY_CPU after watch(), every WATCH_TICK,
    until forget(). Made again in a forked child, which has none of its parent's threads."""

    def __init__(self):
        self._changed = threading.Condition()
        self._due: dict[Turn, float] = {}  # the next check of each watched request (monotonic)
        # Requests in a Turn.cpu_limit, each limit by its token: the cpu_spent() past which
        # its `over` is called, and the monotonic time at which it is (None: none).
        self._limits: dict[Turn, dict[object, tuple[float, Callable[[], None], float | None]]]
        self._limits = {}
        self._started = False

    def _start(self, turn: Turn) -> None:
        if not self._started:
            # At the priority the request found: a thread inherits its maker's, and this one
            # may be made by a request lowered on arrival.
            base = (turn._base_policy, turn._base)
            helper_thread(self._run, priority=base, name="robot-turns").start()
            self._started = True

    def watch(self, turn: Turn) -> None:
        """Check `turn` from HEAVY_CPU seconds from now on, and no other request of its thread
        (one left unclosed would otherwise lower the thread's later requests, for good)."""
        with self._changed:
            self._start(turn)
            for other in [t for t in self._due if t._thread == turn._thread]:
                del self._due[other]
                self._limits.pop(other, None)
            self._due[turn] = time.monotonic() + HEAVY_CPU
            self._changed.notify()

    def limit(
        self, turn: Turn, spent: float, over: Callable[[], None], until: float | None = None
    ) -> object:
        """Call `over()` and stop `turn`'s git processes once its cpu_spent() passes `spent`
        or the monotonic clock `until`; returns the limit's token for unlimit()."""
        token = object()
        with self._changed:
            self._start(turn)
            self._limits.setdefault(turn, {})[token] = (spent, over, until)
            self._due.setdefault(turn, time.monotonic() + WATCH_TICK)
            self._changed.notify()
        return token

    def unlimit(self, turn: Turn, token: object) -> None:
        """End `turn`'s limit `token`: once this returns, its `over` will not be called."""
        with self._changed:
            limits = self._limits.get(turn, {})
            limits.pop(token, None)
            if not limits:
                self._limits.pop(turn, None)

    def forget(self, turn: Turn) -> None:
        """Check `turn` no more: once this returns, the watcher will never lower it."""
        with self._changed:
            self._due.pop(turn, None)
            self._limits.pop(turn, None)

    def _run(self) -> None:
        with self._changed:
            while True:
                if not self._due:
                    self._changed.wait()
                    continue
                turn, due = min(self._due.items(), key=lambda item: item[1])
                now = time.monotonic()
                if due > now:
                    self._changed.wait(due - now)
                    continue
                if not turn._maker.is_alive():
                    # Its thread ended without closing it: the kernel hands the thread's id
                    # to the next thread or process made, which a lowering would then hit.
                    del self._due[turn]
                    self._limits.pop(turn, None)
                    continue
                try:
                    self._check(turn)
                except OSError:
                    log.exception("could not lower or stop a heavy request")
                if turn.lowered and turn not in self._limits:
                    del self._due[turn]
                else:
                    self._due[turn] = now + WATCH_TICK

    def _check(self, turn: Turn) -> None:
        """Lower `turn` once heavy; past its limit, call its `over` and stop its git."""
        spent = None
        if not turn.lowered:
            spent = turn.cpu_spent()
            if spent > HEAVY_CPU:
                turn._lower(with_children=True)
        limits = self._limits.get(turn)
        if limits:
            spent = turn.cpu_spent() if spent is None else spent
            now = time.monotonic()
            passed = [
                token
                for token, (limit, _, until) in limits.items()
                if spent > limit or (until is not None and now >= until)
            ]
            for token in passed:
                limits.pop(token)[1]()  # its `over`
            if not limits:
                del self._limits[turn]
            if passed:
                turn.stop_children()


_WATCHER = _Watcher()


def _new_watcher() -> None:
    global _WATCHER
    _WATCHER = _Watcher()


os.register_at_fork(after_in_child=_new_watcher)


def join_pool(turn: Turn, wiki: Wiki, caller: Caller) -> None:
    """Put a signed-in member's request in its wiki's members' pool (the owner's in the
    owner's): a crowd of visitors never locks its wiki's people out; nor the people of one
    wiki its owner (at any of their wikis) or another wiki's people."""
    if caller.role is not None:
        turn.as_member(owner=caller.did == wiki.owner_did)


def _make_folder(owner_dir: Path) -> bool:
    """Make an owner's folder; return whether it is there. A failure shows, logged, when its
    files cannot be opened."""
    try:
        owner_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class _Child:
    """A running child process: its pid, CPU seconds so far, and start in clock ticks since
    boot (proc(5): /proc/PID/stat fields 14, 15 and 22)."""

    pid: int
    cpu: float
    started: int


_TICKS = os.sysconf("SC_CLK_TCK")


def _boot_ticks() -> int:
    """Now, in the clock ticks since boot that proc(5) gives a process's start in."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * _TICKS)


def _child_pids() -> set[int]:
    """The pids of this process's running children (one read of /proc per thread)."""
    pids: set[int] = set()
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as listing:
                pids.update(int(pid) for pid in listing.read().split())
    except (OSError, ValueError):
        pass  # no /proc
    return pids


def _children(passing: set[int] = frozenset()) -> list[_Child]:
    """This process's running children (its git processes) but those in `passing` (pids),
    each with the CPU of every process under it; [] where /proc cannot tell. Passing over the
    children a request found running is what keeps this cheap: a worker keeps two cat-file
    processes for each wiki it has open, and reading each one's tree on every request cost a
    worker of 100 wikis ~4 ms of CPU per view (review 54's bench)."""
    found = []
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children") as listing:
                pids = [pid for pid in listing.read().split() if int(pid) not in passing]
            for pid in pids:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                found.append(_Child(int(pid), tree_cpu(int(pid)), int(fields[19])))
    except (OSError, ValueError, IndexError):
        pass  # a child that ended while read, or no /proc: what was read so far
    return found


def _children_cpu() -> float:
    """CPU seconds of this process's children that ended (git runs), user and system."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _lock_one(fds: list[int]) -> int | None:
    """Lock the first free of `fds` (exclusive flock, no waiting) and return it, or None."""
    for fd in fds:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            continue
    return None
