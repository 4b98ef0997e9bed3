"""Sections of code that exceptions raised by this process's own signal handlers wait for.

Python runs a signal handler between any two bytecodes of the main thread, so an exception it
raises can land between a fork and the parent's hold on its child, or in the wait that reaps
it: the child is left a zombie for the worker's life, or returns into its parent's code. A
handler that raises (the render budget's, app.wiki.otterwiki.budget) first asks `holding_off()`
and, while it is True, raises nothing: its timer fires again shortly after.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_state = threading.local()


@contextmanager
def held_off() -> Iterator[None]:
    """A block that cooperating signal handlers (see the module) do not interrupt; nests."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1


def holding_off() -> bool:
    """True inside a `held_off` block of the calling thread (signal handlers run in the main
    thread, so theirs is the one asked)."""
    return getattr(_state, "depth", 0) > 0
