"""The read limit: every read of a wiki is held to a few render budgets of CPU with its git
processes, and to a wall-clock bound; past either, its git is killed and it answers 503.

Installed by `install_request_limit` around Otterwiki's app (app.wiki.otterwiki.hooks).
"""

from __future__ import annotations

import functools
import logging
from types import ModuleType

from flask import request

from app.core.errors import Unavailable
from app.wiki.otterwiki.budget import STOPPED
from app.wiki.otterwiki.budget import current_tenant
from app.wiki.otterwiki.budget import drop_stopped_git
from app.wiki.otterwiki.budget import request_stopped
from app.wiki.otterwiki.render import cached
from app.wiki.otterwiki.render import keep
from app.wiki.otterwiki.render import note_outcome
from app.wiki.otterwiki.verdicts import VERDICT_SECONDS
from app.wiki.otterwiki.verdicts import verdict_key
from app.wiki.turns import TURN_KEY

log = logging.getLogger("robot.wiki.request_limit")

# CPU seconds a wiki read may use in all, its own and its git processes', in render budgets:
# past it its git processes are killed and it answers 503. Its budgeted parts stop at one
# budget; this holds the rest. A page view looks up the page's last commit (at a revision,
# on every view) with `git log`, which reads the history back to it: 0.5 s of git's CPU per
# 100,000 commits, and pushes may bring millions. Only reads are held so: git killed in a
# write could leave its index locked or a change half made. The export goes at its client's
# pace, under its own rules (app.wiki.heavy, app.web.heartbeat); git's own transfers never
# reach Otterwiki's app.
REQUEST_BUDGETS = 2
REQUEST_MIN_SECONDS = 4.0  # however small the budget (tests run on 10 ms ones)
# Seconds of wall clock a read may take, however little CPU: a lowered read's git gets little
# of it on a busy host, and two such readers held their workers until gunicorn's timeout (30 s
# by default) killed them, answering an empty 500 (review 48). Past it: 503, git killed.
REQUEST_WALL_SECONDS = 20.0
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
# Otterwiki's views that take POST to read alike (its search form, the history's choice of two
# revisions, the preview, the view's and diff's): as costly as by GET, and held the same
# (review 54: a posted view or history went past every read limit). The view posted with
# `edit` is left out, as is the editor: it may discard a draft, a write.
_POSTED_READS = frozenset({"view", "history", "diff", "search", "preview"})
_BULK_ENDPOINTS = frozenset({"page_api.export_wiki"})
_STOPPED_BY_CPU = "robot.request_stopped_by_cpu"  # environ key: its CPU bound was passed
# How a kept verdict of a read that passed its CPU bound begins: the same view at the same
# HEAD answers 503 at once (a page of 9,000 attachments cost 4 s of CPU on every view).
_LIMIT_VERDICT = "answering this took"


def install_request_limit(server: ModuleType) -> None:
    """Hold every read of a wiki but the export to REQUEST_BUDGETS render budgets of CPU with
    its git processes (app.wiki.turns.Turn.add_limit). Installing twice does nothing."""
    app = server.app
    if getattr(app, "robot_request_limit", False):
        return
    app.robot_request_limit = True
    _refuse_git_once_stopped()
    app.before_request(_limit_request)
    app.after_request(_answer_when_stopped)
    app.teardown_request(_end_request_limit)


def _refuse_git_once_stopped() -> None:
    """Make every git command a request starts after its limit passed fail at once
    (GitPython's GitCommandError, no process): the kill stops the git running then, and
    Otterwiki's loops take its failure as a file not found and go on to the next, each
    with its own git (9,000 attachments ran on until gunicorn killed the worker, review 49).
    GitPython's `Git.execute` (3.1) starts every git command but the kept cat-file's queries."""
    from git.cmd import Git
    from git.exc import GitCommandError

    original = Git.execute
    if getattr(original, "robot_bounded", False):
        return

    @functools.wraps(original)
    def execute(self, command, *args, **kwargs):
        if request_stopped():
            raise GitCommandError(command, "stopped", "", "the request went past its limit")
        return original(self, command, *args, **kwargs)

    execute.robot_bounded = True
    Git.execute = execute


def _limit_request() -> None:
    from flask import g

    turn, tenant = request.environ.get(TURN_KEY), current_tenant()
    if turn is None or tenant is None or not _reads():
        return
    if request.endpoint in _BULK_ENDPOINTS:
        return
    _, known = cached(tenant, verdict_key(tenant))
    if isinstance(known, str) and known.startswith(_LIMIT_VERDICT):
        note_outcome("over-limit-known")
        raise Unavailable(known, retry_after=5)  # passed its limit at this HEAD: at no cost
    environ = request.environ
    seconds = max(REQUEST_BUDGETS * tenant.settings.render_budget, REQUEST_MIN_SECONDS)

    def over() -> None:  # from the turn's watcher
        if turn.cpu_spent() > seconds:
            environ[_STOPPED_BY_CPU] = True
            environ.setdefault(STOPPED, f"more than {seconds:g} s of CPU")
        else:
            environ.setdefault(STOPPED, f"more than {REQUEST_WALL_SECONDS:g} s (a busy server)")

    g.robot_request_limit = (
        turn,
        turn.add_limit(seconds, over, wall_seconds=REQUEST_WALL_SECONDS),
    )


def _reads() -> bool:
    """Whether this request only reads its wiki (see _READS and _POSTED_READS)."""
    if request.method in _READS:
        return True
    posted_read = request.method == "POST" and request.endpoint in _POSTED_READS
    return posted_read and not (request.endpoint == "view" and "edit" in request.values)


def _answer_when_stopped(response):
    """Whatever a request stopped by its limit answers (a 404 or 500 from git killed under it,
    or a page read from git's cut answer) becomes 503."""
    took = request.environ.get(STOPPED)
    if took is None:
        return response
    from app.wiki.responses import error_response

    response.close()
    log.warning("a request took %s: %s", took, request.path)
    stopped = Unavailable(_refusal(took), retry_after=5)
    tenant = current_tenant()
    if request.environ.get(_STOPPED_BY_CPU) and tenant is not None:  # not a busy host's
        key = verdict_key(tenant)
        cache, _ = cached(tenant, key)
        keep(cache, key, stopped.message, VERDICT_SECONDS, stopped_too=True)
    return error_response(stopped, request.path, request.method)


def _end_request_limit(_error) -> None:
    """End the request's limit; if it passed, at any time until now (its last handlers' CPU
    counts too), clean up after the stop (drop_stopped_git): the kill may have taken the
    cat-file processes GitPython keeps for the wiki, which left in its cache stay zombies
    that the next read asks."""
    from flask import g

    limit = g.pop("robot_request_limit", None)
    if limit is None:
        return
    limit[0].remove_limit(limit[1])  # from here on, no kill
    if request_stopped():
        drop_stopped_git()


def _refusal(took: str) -> str:
    """The 503's message of a read that passed its limit, `took` saying which."""
    return f"{_LIMIT_VERDICT} {took}; ask for less at once, or clone the wiki with git"
