"""Steps whose cost the caller's input decides (a regular-expression scan of every page, a
full-text query of words the pages repeat): a few slots on the host, taken in a fair order.

Each such step holds its worker for up to seconds, and lowered priority does not shorten a
wait: four clients on four owners' wikis held every worker, and other wikis' views waited
(thirty-second review, review 35). So SLOTS steps of a kind run at once on the host; a step
that finds them taken is refused at once (429, Retry-After) and leaves a want. When a slot is
free, the owner (the tenancy of app.wiki.turns: all the wikis of one owner) that has waited
and ran its last step longest ago goes first, and within an owner so does such a pool of
callers (an owner's visitors, a wiki's members, the owner): a step whose owner (or, within
its owner, whose pool) ran one more recently than one wanting a slot in the last
WANT_SECONDS is refused, the slot left for it. One client looping scans in four pools kept
another owner's every scan refused (reviews 34 and 35), and an owner's twenty wikis with a
second account a member of each made twenty-two pools, each going before another owner's
one (review 36); now an owner that has not run one is the next to, whoever else loops and in
however many pools.

The slots are flock(2) locks (app.core.locks.one_of_slots) and an owner's or a pool's last
step and want are mtimes of files under the run dir, shared by every worker.
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
    TooManyRequests (429, Retry-After: RETRY_SECONDS) when every slot is taken, or when an
    owner or a pool that ran its last step longer ago is waiting for one. Outside a wiki's
    request (no Turn), only the slots apply.
    """
    from flask import g
    from flask import request

    run_dir = g.tenant.settings.run_dir
    turn = request.environ.get(TURN_KEY)
    # (folder, name) of the caller's owner among owners, then of its pool among the owner's.
    levels = _levels(run_dir / f"{kind}-pools", turn) if turn is not None else []
    with one_of_slots(run_dir, kind, SLOTS) as held:
        if held and any(_someone_first(folder, name) for folder, name in levels):
            held = False
        if not held:
            for folder, name in levels:
                _touch(folder / f"{name}.want")
            raise TooManyRequests(
                f"another {doing} is running on this host; try again in a moment{instead}",
                retry_after=RETRY_SECONDS,
            )
        try:
            yield
        finally:
            for folder, name in levels:
                _touch(folder / f"{name}.last")
                _remove(folder / f"{name}.want")


def _levels(folder: Path, turn) -> list[tuple[Path, str]]:
    """[(folder of owners, the turn's owner's name), (its owner's folder of pools, the turn's
    pool's name)]: file names, hashes of the turns' folders."""
    owner = _file_name(turn.tenancy)
    return [(folder, owner), (folder / owner, _file_name(turn.pool))]


def _file_name(pool: Path) -> str:
    return hashlib.sha256(str(pool).encode()).hexdigest()[:32]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0  # never


def _someone_first(folder: Path, name: str) -> bool:
    """Whether another owner (or pool) of `folder` wants a slot (in the last WANT_SECONDS) and
    ran its last step before `name` did its own."""
    mine = _mtime(folder / f"{name}.last")
    if mine == 0.0:
        return False  # never ran one: no one goes before it
    recent = time.time() - WANT_SECONDS
    try:
        wants = list(folder.glob("*.want"))
    except OSError:
        return False
    for want in wants:
        other = want.name.removesuffix(".want")
        if other == name:
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
