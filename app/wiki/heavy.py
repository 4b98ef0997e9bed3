"""Steps whose cost the caller's input decides (a regular-expression scan of every page, a
full-text query of words the pages repeat): a few slots on the host, taken in a fair order.

Each such step holds its worker for up to seconds, and lowered priority does not shorten a
wait: four clients on four owners' wikis held every worker, and other wikis' views waited
(thirty-second review, review 35). So SLOTS steps of a kind run at once on the host; a step
that finds them taken is refused at once (429, Retry-After) and leaves a want. When a slot is
free, the pool of callers (app.wiki.turns: an owner's visitors, a wiki's members, the owner)
that has waited and ran its last step longest ago goes first: a step whose pool ran one more
recently than a pool wanting one in the last WANT_SECONDS is refused, the slot left for it.
One client looping scans in four pools kept another owner's every scan refused (reviews 34
and 35); now a pool that has not run one is the next to, whoever else loops.

The slots are flock(2) locks (app.core.locks.one_of_slots) and a pool's last step and want
are mtimes of files under the run dir, shared by every worker.
"""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from pathlib import Path

from app.core.errors import TooManyRequests
from app.core.locks import one_of_slots
from app.core.settings import gunicorn_workers
from app.wiki.turns import TURN_KEY

# Steps of one kind running at once on the host: a quarter of the wiki service's workers, at
# least one.
SLOTS = max(1, gunicorn_workers() // 4)
RETRY_SECONDS = 3
# Seconds a refused pool's want is kept: long enough for a client to come back after
# RETRY_SECONDS, short enough that one that gave up holds no one back for long.
WANT_SECONDS = RETRY_SECONDS + 3.0


@contextmanager
def heavy_step(kind: str, doing: str, instead: str = ""):
    """Hold one of SLOTS host slots of `kind` (a file name part: "regex-scan") for the block,
    in the fair order of the module's docstring.

    `doing` names the step in a refusal ("regular-expression or match-case search"),
    `instead` what to do instead (", or search without those options"). Raises
    TooManyRequests (429, Retry-After: RETRY_SECONDS) when every slot is taken, or when a
    pool that ran its last step longer ago is waiting for one. Outside a wiki's request (no
    Turn), only the slots apply.
    """
    from flask import g
    from flask import request

    run_dir = g.tenant.settings.run_dir
    folder = run_dir / f"{kind}-pools"
    turn = request.environ.get(TURN_KEY)
    pool = _pool_name(turn.pool) if turn is not None else None
    with one_of_slots(run_dir, kind, SLOTS) as held:
        if held and pool is not None and _someone_first(folder, pool):
            held = False
        if not held:
            if pool is not None:
                _touch(folder / f"{pool}.want")
            raise TooManyRequests(
                f"another {doing} is running on this host; try again in a moment{instead}",
                retry_after=RETRY_SECONDS,
            )
        try:
            yield
        finally:
            if pool is not None:
                _touch(folder / f"{pool}.last")
                _remove(folder / f"{pool}.want")


def _pool_name(pool: Path) -> str:
    return hashlib.sha256(str(pool).encode()).hexdigest()[:32]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0  # never


def _someone_first(folder: Path, pool: str) -> bool:
    """Whether another pool wants a slot (in the last WANT_SECONDS) and ran its last step
    before `pool` did its own."""
    mine = _mtime(folder / f"{pool}.last")
    if mine == 0.0:
        return False  # never ran one: no one goes before it
    recent = time.time() - WANT_SECONDS
    try:
        wants = list(folder.glob("*.want"))
    except OSError:
        return False
    for want in wants:
        other = want.name.removesuffix(".want")
        if other == pool:
            continue
        wanted = _mtime(want)
        if wanted < recent:
            _remove(want)  # given up
        elif _mtime(folder / f"{other}.last") < mine:
            return True
    return False


def _touch(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        path.touch()  # now, as its mtime
    except OSError:
        pass  # an unwritable run dir: the slots alone decide


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


# Full-text queries whose ranking reads more word instances than app.pages.fulltext's
# HEAVY_INSTANCES take a slot of their own kind.
HEAVY_SEARCH_KIND = "heavy-search"


def heavy_search():
    """The `heavy` context of app.pages.fulltext.SearchIndex.search in a wiki's request: a slot
    of HEAVY_SEARCH_KIND (see heavy_step)."""
    return heavy_step(
        HEAVY_SEARCH_KIND,
        "search of words this wiki's pages repeat very often",
        ", or search for rarer words",
    )
