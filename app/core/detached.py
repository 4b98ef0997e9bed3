"""Start a step apart from the request that wants it: detached, lowest priority, one at a time.

Steps that read a whole long history (git's commit-graph, the last-commit index) take seconds
to minutes on a wiki of a million commits: longer than any request may run. They run as
nobody's child (setsid(1) --fork: no zombie to reap, and the wiki worker's priority bookkeeping,
app.wiki.turns, never sees them), at the lowest priority (chrt(1) --idle, nice(1) 19), and one
per repository and kind at a time (flock(1) -n on a lock file in the repository's .git: a
second start while one runs gives up at once), and SLOTS at most on the host.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from app.core.locks import try_lock

log = logging.getLogger(__name__)

# Under SCHED_IDLE as well as nice 19: lowered requests (app.wiki.turns) run under SCHED_IDLE,
# and a step at nice 19 alone took the CPU ahead of another owner's lowered first render
# (twenty-fourth review).
DETACHED = ("setsid", "--fork", "chrt", "--idle", "0", "nice", "-n", "19")
_TIMEOUT = 10.0  # seconds for setsid to fork and return; it does no work of its own
# Steps running at once on the host, whatever their wikis: one owner with 20 wikis started
# 20 search catch-ups of ~37 MB each (twenty-fourth review). A start finding every slot
# taken gives up; the request that wanted it asks again later.
SLOTS = 2
_slots_folder: Path | None = None  # set by use_slots_in


def use_slots_in(folder: Path) -> None:
    """Count this process's detached steps against the SLOTS in `folder` (the instance's run
    folder: app.core.platform.Platform.load names it), which every process naming it shares.
    A process that never calls it (a bare test repository) starts its steps without a slot."""
    global _slots_folder
    _slots_folder = folder


def start_detached(
    repo: Path,
    lock: str,
    command: tuple[str, ...],
    env: Mapping[str, str],
    cwd: Path | None = None,
) -> bool:
    """Start `command` for the git work tree `repo` with environment `env`, detached, unless
    one holding `lock` (a path relative to `repo`) runs already, and return at once: True if
    it was started (or one already ran), False if it was not (no slot free, or it could not
    be; logged). It runs in `cwd` (default: `repo`): a program that looks for code in its
    working folder (Python's `-m`) must never run in a wiki's files.

    The step also holds one of the instance's SLOTS (`use_slots_in`); with none free it is
    not started (False, logged)."""
    slot = ()
    if _slots_folder is not None:
        free = _free_slot(_slots_folder)
        if free is None:
            log.info("not starting %s in %s: %d steps run already", command[0], repo, SLOTS)
            return False
        slot = ("flock", "-n", str(free))
    try:
        subprocess.run(
            (*DETACHED, "flock", "-n", str(repo / lock), *slot, *command),
            cwd=cwd or repo,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=_TIMEOUT,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        log.warning("could not start %s in %s", command[0], repo, exc_info=True)
        return False
    return True


def _free_slot(folder: Path) -> Path | None:
    """The lock file of a slot nobody holds now in `folder`, or None. The step takes it with
    flock -n once started: two starts choosing the same slot at once start one step."""
    folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    for n in range(SLOTS):
        path = folder / f"slot-{n}.lock"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o640)
        except OSError:
            continue
        try:
            if try_lock(fd):
                return path
        finally:
            os.close(fd)  # lets the lock go: the step takes it
    return None


def start_module(repo: Path, lock: str, module: str, *args: str, env: Mapping[str, str]) -> bool:
    """Start `python -m module *args` for the work tree `repo` as start_detached does (holding
    `lock`, with environment `env`); return whether it was started.

    Python runs with -P in the code's own folder: `-m` once put the working folder first on
    the module path, and a builder ran in the wiki's work tree, so a page's attachment named
    `app/__init__.py` ran as the service's user. -I would drop PYTHONPATH, which names the
    code's folder."""
    code_root = Path(__file__).resolve().parents[2]
    env = {**env, "PYTHONPATH": str(code_root), "PYTHONSAFEPATH": "1"}
    command = (sys.executable, "-P", "-m", module, *args)
    return start_detached(repo, lock, command, env, cwd=code_root)
