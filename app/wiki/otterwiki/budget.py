"""CPU budgets: how a render or a view is stopped once it has used its share of the CPU.

A budget counts the process's CPU with ITIMER_PROF (gunicorn's sync workers run requests on
the main thread, and Python's `re` checks for signals while it matches) and, through the
request's turn (app.wiki.turns), the CPU of the git processes the request started. Past it,
RenderOverBudget is raised where the code runs; the render cache (render.py) shows the page's
source instead, the bounded views (verdicts.py) answer 503. Native code runs on until it
returns to Python: the sanitizer refuses up front the HTML its parser would spend more than
linear time on (sanitize.py).
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from contextlib import nullcontext

from flask import has_request_context
from flask import request

from app.core.interrupts import holding_off
from app.wiki.turns import TURN_KEY

# environ key: the request's limit (request_limit.py) stopped it; its value says how.
STOPPED = "robot.request_stopped"


class RenderOverBudget(BaseException):
    """A render spent more CPU than its budget (raised from the SIGPROF handler).

    A BaseException, as KeyboardInterrupt is: Otterwiki's embeddings catch Exception.
    """


class RenderStalled(RenderOverBudget):
    """A render's step that runs on its own clock (the sanitizer's confined child) was stopped
    at its deadline having had little of the CPU: the host was busy, or the step held up, so
    the stop says nothing about the page, and its verdict is kept a short time only."""


class SliceOver(BaseException):
    """A slice of a budgeted run (`within_slice`) used its CPU; the run itself goes on.

    A BaseException like RenderOverBudget, so that no render keeps it as a verdict.
    """


class _Budget:
    """The CPU budget of the outermost render of this process (nested renders share it)."""

    def __init__(self):
        self.armed = False
        self.slicing = False
        self.deferring = 0  # depth of `uninterrupted` blocks
        self.pending: type[BaseException] | None = None
        self.children_stopped = False  # set by the turn's watcher (another thread)
        # Set first in a run's or slice's end, before any call: Python runs the signal's
        # handler on entry to the next function called, so one landing as the end began (in
        # `_despite`, before its `try`) left the run armed for the worker's life, and every
        # later request of any wiki on it was stopped at random (review 50).
        self.ending = False

    def _expired(self, _signum, _frame):
        # Raised again on each of the timer's later signals (every 50 ms) until the slice or
        # the run ends: native code that calls Python back (nh3's attribute filter) drops an
        # exception raised there, and a bare `except:` may swallow one too.
        if self.ending:
            return  # the timer fires again in 50 ms, if it is still set then
        if self.slicing:
            stop = SliceOver
        elif self.armed:
            stop = RenderOverBudget
        else:
            return
        if holding_off():  # a fork and its reaping (app.core.confined): the timer fires again
            return
        if self.deferring:
            self.pending = self.pending or stop
            return
        raise stop

    @contextmanager
    def uninterrupted(self):
        """Hold off RenderOverBudget and SliceOver until the block ends, then raise them."""
        self.deferring += 1
        try:
            yield
        finally:
            self.deferring -= 1
        if not self.deferring and self.pending is not None:
            stop, self.pending = self.pending, None
            raise stop

    def run(self, call, seconds: float):
        """Return `call()`, raising RenderOverBudget once it used `seconds` of process CPU.

        Off the main thread (signals reach only it) or inside a render already budgeted, it
        just calls.
        """
        if self.armed or threading.current_thread() is not threading.main_thread():
            return call()
        previous = signal.signal(signal.SIGPROF, self._expired)
        self.armed = True
        self.children_stopped = False
        turn = request.environ.get(TURN_KEY) if has_request_context() else None
        # The timer counts this process's CPU only; the turn's watcher counts its git's too.
        limit = turn.cpu_limit(seconds, self._stop_for_children) if turn else nullcontext()
        stop: type[RenderOverBudget] | None = None  # what stopped it, if anything did
        try:
            # Fires again every 50 ms until disarmed, should a bare `except:` swallow the first.
            signal.setitimer(signal.ITIMER_PROF, seconds, 0.05)
            with limit:
                answer = call()
        except RenderOverBudget as raised:
            stop = type(raised)  # RenderStalled stays itself: it is no verdict on the page
        except BaseException:
            if not self.children_stopped:
                raise
            stop = RenderOverBudget  # git killed under it: whatever it raised, the budget did
        finally:
            self.ending = True  # first: see __init__
            self._disarm()
            signal.signal(signal.SIGPROF, previous)
            self.ending = False
        # With its children stopped it may have read git's cut answer as a whole one.
        if stop is not None or self.children_stopped:
            drop_stopped_git()
            raise RenderOverBudget if self.children_stopped else stop
        return answer

    def _stop_for_children(self) -> None:
        """From the turn's watcher: the run's git processes took it past its budget (they are
        killed next). Stop the run as its own timer would, out of a wait on git's pipe."""
        self.children_stopped = True
        signal.pthread_kill(threading.main_thread().ident, signal.SIGPROF)

    def _disarm(self) -> None:
        self.armed = self.slicing = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        self.pending = None

    def slice(self, call, seconds: float):
        """Return `call()`, raising SliceOver once it used `seconds` of process CPU, inside a
        run whose budget then goes on with what is left of it. Where the budget ends first,
        outside a run or off the main thread, it just calls."""
        main = threading.current_thread() is threading.main_thread()
        if not self.armed or self.slicing or not main:
            return call()
        left, _ = signal.getitimer(signal.ITIMER_PROF)
        if left <= seconds:
            return call()
        start = time.process_time()
        self.slicing = True
        try:
            signal.setitimer(signal.ITIMER_PROF, seconds, 0.05)
            return call()
        finally:
            self.ending = True  # first: see __init__
            # The run gets back what is left of it.
            left -= time.process_time() - start
            signal.setitimer(signal.ITIMER_PROF, max(left, 0.001), 0.05)
            self.slicing = self.ending = False


_budget = _Budget()


def run_budgeted(call, seconds: float):
    """Return `call()`, raising RenderOverBudget once it (with its git) used `seconds` of CPU;
    inside a budgeted run or off the main thread it just calls (see _Budget.run)."""
    return _budget.run(call, seconds)


def uninterrupted():
    """A context in which no budget or slice stops the code: a write (a cache row, a render
    kept) must not stop half-way, leaving its session or transaction broken for the rest of the
    request. What expired in it stops the code at its end."""
    return _budget.uninterrupted()


def within_slice(call, seconds: float):
    """Return `call()` within `seconds` of CPU of the current budgeted view, raising SliceOver
    past them (the view goes on); see _Budget.slice."""
    return _budget.slice(call, seconds)


def budgeted() -> bool:
    """True inside a render held to a budget: raising RenderOverBudget shows the page's source."""
    return _budget.armed


def request_stopped() -> bool:
    """True in a request that its limit has stopped (request_limit.py): what it computes from
    here on may rest on git refused or killed under it."""
    return has_request_context() and request.environ.get(STOPPED) is not None


def request_lowered() -> bool:
    """True in a wiki's request that its turn runs lowered (app.wiki.turns: SCHED_IDLE at
    nice 19, after its own CPU or its pool's debt): what it forks runs so too, and gets
    nothing of a busy host."""
    turn = request.environ.get(TURN_KEY) if has_request_context() else None
    return bool(turn is not None and turn.lowered)


def drop_stopped_git(kill: bool = True) -> None:
    """After a stop anywhere in the request's code: with `kill`, kill the git processes the
    request started that still run (a read stopped mid-answer drops its Popen, its git left
    running unwaited); drop the cat-file processes GitPython keeps for the wiki (one stopped
    mid-answer would hand its rest to the next question, and one killed stays a zombie in
    GitPython's cache, answering nothing); and reap what was killed (app.wiki.turns.Turn's
    stop_children and reap_stopped: its CPU is this request's). Without `kill` (code that goes
    on reading git), an unwaited git is reaped when the request's next one starts (subprocess
    does). Nothing outside a wiki's request."""
    turn = request.environ.get(TURN_KEY) if has_request_context() else None
    if turn is not None and kill:
        turn.stop_children()
    tenant = current_tenant()
    if tenant is not None:
        tenant.storage.repo.git.clear_cache()
    if turn is not None:
        turn.reap_stopped()


def current_tenant():
    """The wiki (`g.tenant`) of the request being served; None outside a wiki's request."""
    from flask import g
    from flask import has_app_context

    return getattr(g, "tenant", None) if has_app_context() else None
