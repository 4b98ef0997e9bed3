"""Views of wikis whose pages cost much CPU run at a lower priority than everyone else's.

One pool of workers on a few cores serves every wiki: clients hammering one wiki's heavy pages
took the cores from every other wiki's short views. Each worker keeps, per wiki, a moving
average of the CPU its views took; a view of a wiki above HEAVY_VIEW runs at nice HEAVY_NICE,
so the kernel runs other wikis' views first (CFS gives nice 0 about nine times the CPU of nice
10) and the heavy wiki still gets every idle cycle. Lowering the priority is allowed to anyone;
raising it back needs root or an RLIMIT_NICE of 20 (systemd: LimitNICE=20), so where neither
holds this does nothing.
"""

from __future__ import annotations

import os
import resource
import time
from types import ModuleType

# CPU seconds of a view above which a wiki's views count as heavy: in Flask, a small page takes
# ~3.5 ms here, a 20 KB page from the render cache ~5 ms, 200 KB of "[" from it ~7.5 ms.
HEAVY_VIEW = 0.006
HEAVY_NICE = 10
# Weight of the newest view in a wiki's moving average: a few light views make it light again.
_NEWEST = 0.3
_WIKIS_MAX = 10_000


def can_restore_priority() -> bool:
    """Tell whether this process may raise its priority back after lowering it."""
    if os.geteuid() == 0:
        return True
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    return soft == resource.RLIM_INFINITY or 20 - soft <= base


class Fairness:
    """Per-wiki moving averages of view CPU in this worker, and the priority they decide."""

    def __init__(self):
        self.base = os.getpriority(os.PRIO_PROCESS, 0)
        self.averages: dict[str, float] = {}
        self.started: float | None = None
        self.lowered = False

    def begin(self, slug: str) -> None:
        """Start a view of `slug`: lower the priority if its views are heavy."""
        self.started = time.process_time()
        if self.averages.get(slug, 0.0) > HEAVY_VIEW:
            os.setpriority(os.PRIO_PROCESS, 0, self.base + HEAVY_NICE)
            self.lowered = True

    def end(self, slug: str) -> None:
        """End the view of `slug`: account its CPU, put the priority back."""
        if self.lowered:
            os.setpriority(os.PRIO_PROCESS, 0, self.base)
            self.lowered = False
        if self.started is None:
            return
        spent, self.started = time.process_time() - self.started, None
        if len(self.averages) > _WIKIS_MAX:
            self.averages.clear()
        old = self.averages.get(slug, spent)
        self.averages[slug] = old + _NEWEST * (spent - old)


def install_fairness(server: ModuleType) -> None:
    """Run each view of a heavy wiki at a lower priority (when it can be raised back after)."""
    if not can_restore_priority():
        return
    from flask import g

    fairness = Fairness()

    def begin():
        tenant = getattr(g, "tenant", None)
        if tenant is not None:
            fairness.begin(tenant.slug)

    def end(_error=None):
        tenant = getattr(g, "tenant", None)
        if tenant is not None:
            fairness.end(tenant.slug)

    server.app.before_request_funcs.setdefault(None, []).append(begin)
    server.app.teardown_request(end)
