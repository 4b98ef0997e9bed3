"""Page bodies rendered once per content, in any worker, and every render held to a CPU budget.

Every Markdown render of Otterwiki goes through `OtterwikiRenderer.markdown(text, cursor,
**kwargs)` -> (html, toc, library requirements): page views, previews, the custom 404 page, the
page index's tables of contents and the Include embedding. `install_render_cache` wraps it from
the outside, so what is cached is exactly what it returns (after any wrapper installed before,
such as the sanitizer), never the per-user page chrome around it.

The cache lives on disk under the data dir (diskcache: SQLite plus files, shared by the
workers, bounded in size, safe for concurrent writers), keyed by a digest of everything the
render reads: the text, the cursor, the keyword arguments (the page's URL, against which
relative links resolve), the whole app config (WIKILINK_STYLE, OPEN_LINKS_IN_NEW_TAB, the HTML
allow-list ...), the wiki (slug and creation time: never shared across wikis or with a wiki
re-created under the same slug), the render versions and the budget; pages with embeddings
(`{{...}}`) also read other pages and attachments, so for them the repo's HEAD is in the key.

A render that spends more than the budget of CPU (ITIMER_PROF; gunicorn's sync workers run
requests on the main thread, and Python's `re` checks for signals while it matches) stops, and
the page shows its source, escaped, under a short notice; that verdict is cached like a render.
Native code runs on until it returns to Python: the sanitizer refuses up front (raising
RenderOverBudget) the HTML its parser would spend more than linear time on (sanitize.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import pickle
import signal
import threading
import time
from contextlib import contextmanager
from contextlib import nullcontext
from pathlib import Path
from types import ModuleType
from types import SimpleNamespace
from urllib.parse import unquote

from bs4 import ParserRejectedMarkup
from flask import has_request_context
from flask import request
from flask import url_for
from markupsafe import escape

from app.core.errors import Unavailable
from app.core.interrupts import holding_off
from app.pages.files import head_commit
from app.wiki.turns import TURN_KEY

log = logging.getLogger("robot.wiki.render")

# Our part of every cache key: bump it whenever this package changes what a render returns.
RENDER_VERSION = "robot-render-2"
# The response header naming each render of the request in order: hit, miss or over-budget
# (and index-kept: a page index built before, app.wiki.otterwiki.page_index).
RENDER_HEADER = "X-Robot-Render"
# Library requirements of a page shown as its source: it needs none of them.
_NO_LIBRARIES = {"requires_mermaid": False, "requires_mathjax": False, "requires_datatables": False}


class RenderOverBudget(BaseException):
    """A render spent more CPU than its budget (raised from the SIGPROF handler).

    A BaseException, as KeyboardInterrupt is: Otterwiki's embeddings catch Exception.
    """


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
        stopped = False
        try:
            # Fires again every 50 ms until disarmed, should a bare `except:` swallow the first.
            signal.setitimer(signal.ITIMER_PROF, seconds, 0.05)
            with limit:
                answer = call()
        except RenderOverBudget:
            stopped = True
        except BaseException:
            if not self.children_stopped:
                raise
            stopped = True  # git killed under it: whatever it raised, the budget stopped it
        finally:
            self.ending = True  # first: see __init__
            self._disarm()
            signal.signal(signal.SIGPROF, previous)
            self.ending = False
        # With its children stopped it may have read git's cut answer as a whole one.
        if stopped or self.children_stopped:
            drop_stopped_git()
            raise RenderOverBudget
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


# One diskcache per cache folder and size in this process (tests run several instances).
_caches: dict[tuple[Path, int], object] = {}


def _cache_for(settings):
    """The render cache of this instance, opened on first use (after gunicorn forked)."""
    key = (settings.render_cache_dir, settings.render_cache_mb)
    cache = _caches.get(key)
    if cache is None:
        import diskcache

        # Least recently stored: a hit writes nothing, so views never queue on SQLite's lock.
        # Entries are tagged with their wiki's owner (OWNER_SHARE), indexed to evict by owner.
        cache = diskcache.Cache(
            str(settings.render_cache_dir),
            size_limit=settings.render_cache_mb * 2**20,
            eviction_policy="least-recently-stored",
            tag_index=True,
        )
        _caches[key] = cache
    return cache


def close_caches() -> None:
    """Close every render cache this process opened (tests; workers just exit)."""
    while _caches:
        _caches.popitem()[1].close()


def _unjsonable(value):
    """JSON for what json cannot write: sets in sorted order (a set's own order follows string
    hashes, which differ between interpreter runs), anything else as its repr."""
    if isinstance(value, (set, frozenset)):
        return sorted(map(repr, value))
    return repr(value)


def stable_text(value) -> str:
    """`value` (a dict) as text that is the same in every process (keys and sets sorted)."""
    try:
        return json.dumps(value, sort_keys=True, default=_unjsonable)
    except (TypeError, ValueError):  # keys of mixed types, a cycle: slower, still stable
        return repr(sorted((repr(k), _unjsonable(v)) for k, v in value.items()))


def render_key(renderer, text: str, cursor, kwargs: dict, tenant, version: str) -> str:
    """Digest (hex str) of everything a render of `text` by `renderer` for `tenant` depends on."""
    config = renderer.env.get("config") or {}
    parts = [  # json (C) rather than repr of sorted items: a third of the time
        version,
        tenant.slug,
        tenant.wiki.created_at,
        tenant.settings.render_budget,
        cursor,
        stable_text(kwargs),
        stable_text(config),
    ]
    if "{{" in text:  # embeddings read other pages and attachments
        parts.append(head_commit(tenant.storage.repo) or "")
    digest = hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass"))
    digest.update(b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def source_view(text: str, why: str) -> str:
    """The body of a page that cannot be shown rendered: a notice saying `why` ("took more
    than 2 s to render") and its escaped source."""
    return (
        f'<div class="alert alert-secondary mb-20" role="alert">This page {why}, so it is '
        "shown as its source.</div>\n"
        f'<pre class="robot-page-source">{escape(text)}</pre>\n'
    )


# A rendered body longer than this many times its page's text, plus RENDER_GROWTH_FLOOR
# characters, is shown as source: 28 includes of a 1 MB page made a 650-byte page a 28 MB
# body, cached in the shared render cache and sent on every view (review 40).
MAX_RENDER_GROWTH = 4
RENDER_GROWTH_FLOOR = 2 * 1024 * 1024


def note_outcome(outcome: str) -> None:
    """Name `outcome` (hit, miss, over-budget ...) in this response's RENDER_HEADER."""
    from flask import g

    if not hasattr(g, "robot_renders"):
        g.robot_renders = []
    g.robot_renders.append(outcome)


# Renders a response's header names at each end; the page index of a large wiki renders one
# table of contents per page, and named all 10,000 (50 KB of header).
_HEADER_NOTES = 5


def _report_renders(response):
    from flask import g

    renders = getattr(g, "robot_renders", None)
    if renders:
        if len(renders) > 2 * _HEADER_NOTES:
            left_out = len(renders) - 2 * _HEADER_NOTES
            renders = [*renders[:_HEADER_NOTES], f"{left_out} more", *renders[-_HEADER_NOTES:]]
        response.headers[RENDER_HEADER] = ", ".join(renders)
    return response


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


def _forget(renderer, kwargs: dict) -> None:
    """Remove what `markdown(**kwargs)` put into the renderer's env (it does so on success)."""
    for name in kwargs:
        renderer.env.pop(name.upper(), None)


def _render_bounded(original, renderer, text, cursor, kwargs, tenant):
    """Render within the budget: (html, toc, libraries), or the source view when over it,
    when the text nests deeper than Python's recursion limit lets mistune's recursive block
    parser follow (300 bytes of `>!`, Otterwiki's spoiler in a quote: review 34's 500), when
    Otterwiki's HTML parser (BeautifulSoup's html.parser) rejects what it made (`<![a`: a 500
    on the page, the index and every editor, review 40), or when the body grows past
    MAX_RENDER_GROWTH times the text."""
    budget = tenant.settings.render_budget
    try:
        rendered = _budget.run(lambda: original(renderer, text, cursor, **kwargs), budget)
    except (RenderOverBudget, RecursionError, ParserRejectedMarkup) as stop:
        # The render stopped anywhere: take back the keyword arguments it put into the
        # renderer's env, and drop git's cat-file pipes, which it may have left mid-answer
        # (_budget.run has, on RenderOverBudget).
        _forget(renderer, kwargs)
        drop_stopped_git(kill=False)
        outcome, why = _STOPS[type(stop)]
        why = why.format(budget=budget)
        log.warning("render of a %d-character text in %s: %s", len(text), tenant.slug, why)
        return (source_view(text, why), [], dict(_NO_LIBRARIES)), outcome
    except Exception:
        # Otterwiki leaves them behind on any error: the next render (say the page index's,
        # which passes none) would resolve relative links against this page.
        _forget(renderer, kwargs)
        raise
    if len(rendered[0]) > MAX_RENDER_GROWTH * len(text) + RENDER_GROWTH_FLOOR:
        why = f"renders to {len(rendered[0]):,} characters, far more than its text"
        log.warning("render of a %d-character text in %s: %s", len(text), tenant.slug, why)
        return (source_view(text, why), [], dict(_NO_LIBRARIES)), "too-large"
    return (rendered[0], short_toc(rendered[1]), rendered[2]), "miss"


# Characters of a heading that the page's chrome repeats: the first one is the page's title
# and og:title, and every one is in the sidebar's contents twice and in the page index. A 1 MB
# first heading made each view 8.9 MB, cached or not, past the body's growth bound (review
# 41). The body keeps each heading whole.
TOC_TEXT_CHARS = 200
# Characters of headings and anchors the contents may carry in all: past them the rest of the
# headings are left out of the contents and the page index (review 42: 3,000 headings of 190
# characters made each view 4.8 MB, and a 300 KB heading's anchor was in the contents twice).
# The body keeps them all, with their anchors whole: links from other pages name them (a cut
# anchor broke those, review 43).
TOC_CHARS = 64 * 1024


def short_toc(toc: list) -> list:
    """Return `toc`, Otterwiki's (number, html, level, text, anchor) entries, bounded: each
    text longer than TOC_TEXT_CHARS cut there and ended with an ellipsis (its html then that
    text, escaped), and only the entries that fit in TOC_CHARS."""
    shortened, room = [], TOC_CHARS
    for number, heading, level, text, anchor in toc:
        if len(text) > TOC_TEXT_CHARS or len(heading) > 8 * TOC_TEXT_CHARS:
            text = text[:TOC_TEXT_CHARS].rstrip() + "\u2026"
            heading = str(escape(text))
        room -= len(text) + len(anchor)
        if room < 0:
            break
        shortened.append((number, heading, level, text, anchor))
    return shortened


# Each way a render stops: its outcome (RENDER_HEADER) and what the page says.
_STOPS = {
    RenderOverBudget: ("over-budget", "took more than {budget:g} s to render"),
    RecursionError: ("too-deep", "nests deeper than the renderer can follow"),
    ParserRejectedMarkup: ("unparsable", "holds markup the HTML parser rejects"),
}


def _cached(tenant, key: str):
    """(the render cache, what it holds under `key` or None); (None, None) when the cache
    cannot be read: a broken cache must not break the wiki, which computes as if it were
    empty."""
    try:
        cache = _cache_for(tenant.settings)
        return cache, cache.get(key)
    except Exception:
        log.exception("render cache unreadable; computing without it")
        return None, None


def _keep(cache, key: str, value, seconds: float | None = None, stopped_too: bool = False) -> None:
    """Store `value` under `key` in `cache` (None: nothing), for `seconds` (None: until
    evicted), within its wiki owner's share (_owner_tag); a failure only loses it. Nothing
    once the request's limit passed, but with `stopped_too`: what it computed since may rest on
    git refused or killed under it (a page's attachment list came out empty and was kept so,
    review 50)."""
    stopped = has_request_context() and request.environ.get(_STOPPED) is not None
    if cache is None or (stopped and not stopped_too):
        return
    tenant = current_tenant()
    try:
        with uninterrupted():
            tag = None
            if tenant is not None:
                size = len(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
                tag = _owner_tag(cache, tenant.wiki.owner_did, size)
            cache.set(key, value, expire=seconds, tag=tag)
    except Exception:
        log.exception("render cache unwritable; the next view computes again")


# The renders and verdicts of one owner's wikis may hold this part of the render cache, in two
# generations of half of it each: when the newer is full, a new one starts and the oldest is
# dropped, that owner's alone. Least-recently-stored eviction alone let one owner, storing
# renders of new pages (or, before _one_spelling, of new spellings), push every other wiki's
# out of the cache in ~20 s (review 54); dropping all of an owner's entries at its share let
# one anonymous reader empty the owner's cache with old revisions of a page (review 56).
OWNER_SHARE = 1 / 8
_HELD = "robot-owner-held:"  # + owner DID: (its current generation, the bytes stored in it)


def _owner_tag(cache, owner: str, size: int) -> str:
    """The tag (str) to store an entry of `size` bytes (pickled) of `owner`'s wikis under in
    `cache`: its current generation's, a new one's when the current is full, after which the
    generation before the last is dropped. Atomic across workers (diskcache's transact); the
    count is stored again with each entry, so the cache's own eviction (least recently
    stored) never takes it before the entries it counts. Entries expired or evicted stay
    counted, so an owner holds at most what its count says."""
    half_share = cache.size_limit * OWNER_SHARE / 2
    with cache.transact():
        generation, held = cache.get(_HELD + owner, (0, 0))
        full = held + size > half_share and held > 0
        generation, held = (generation + 1, size) if full else (generation, held + size)
        cache.set(_HELD + owner, (generation, held))
    if full:
        cache.evict(f"{owner} {generation - 2}")
    return f"{owner} {generation}"


_rendering = threading.local()  # depth 1 inside a wiki's cached, budgeted markdown() call


def install_render_cache(server: ModuleType, extra_version: str = "") -> None:
    """Wrap `OtterwikiRenderer.markdown` with the shared render cache and the CPU budget.

    `server` is the booted `otterwiki.server`; `extra_version` joins the cache key's version
    (the sanitizer's version, say), so changing what a wrapper inside returns starts afresh.
    Renders outside a wiki's request (no `g.tenant`) run as before. Installing twice does
    nothing.
    """
    import otterwiki.version
    from otterwiki.renderer import OtterwikiRenderer

    original = OtterwikiRenderer.markdown
    if getattr(original, "robot_render_cache", False):
        return
    version = f"otterwiki-{otterwiki.version.__version__}/{RENDER_VERSION}/{extra_version}"

    def markdown(self, text, cursor=None, **kwargs):
        tenant = current_tenant()
        if tenant is None or getattr(_rendering, "depth", 0):
            # Outside a wiki, or a page an embedding (Include) renders inside a page's render:
            # that render is budgeted and cached as a whole, and its budget's stop must end
            # it, not be kept as this part's verdict while the page goes on (review 39).
            return original(self, text, cursor, **kwargs)
        kwargs = _one_spelling(kwargs, self.env.get("config") or {})
        key = render_key(self, text, cursor, kwargs, tenant, version)
        cache, found = _cached(tenant, key)
        if found is not None:
            outcome, rendered = found
            note_outcome("hit" if outcome == "miss" else outcome)
            html, toc, libraries = rendered
            return html, list(toc), dict(libraries)
        _rendering.depth = 1
        try:
            rendered, outcome = _render_bounded(original, self, text, cursor, kwargs, tenant)
        finally:
            _rendering.depth = 0
        note_outcome(outcome)
        _keep(cache, key, (outcome, rendered))
        return rendered

    markdown.robot_render_cache = True
    markdown.__wrapped__ = original
    OtterwikiRenderer.markdown = markdown
    server.app.after_request(_report_renders)


def _one_spelling(kwargs: dict, config) -> dict:
    """`kwargs` with the page's URL (`page_url`, which `./` links start from) as the view of its
    file spells it: a wiki that does not retain the case of page names opens /Big, /big and /BIG
    as one file (Otterwiki's get_filename lowercases), and one render must serve them all, or
    each of a name's spellings would pay a whole render, and store one (review 54)."""
    page_url = kwargs.get("page_url")
    if not page_url or config.get("RETAIN_PAGE_NAME_CASE") or not has_request_context():
        return kwargs
    root = request.script_root + "/"
    path = unquote(page_url)
    if not path.startswith(root):
        return kwargs
    return {**kwargs, "page_url": url_for("view", path=path[len(root) :].lower())}


def run_bounded(call, refusal: str, verdict_seconds=lambda: VERDICT_SECONDS, view=None):
    """Return `call()` (a view of the current request) within the render budget; past it,
    raise Unavailable(`refusal`), and remember that verdict for this request's view at the
    wiki's HEAD (_verdict_key; `view`, a str, names it instead, for views that share one
    verdict) for `verdict_seconds()`, so the same view answers at once until the wiki changes
    or that time is up; the same for a view too large to show (TooLargeToShow). Outside a
    wiki's request it just calls."""
    tenant = current_tenant()
    if tenant is None:
        return call()
    key = _verdict_key(tenant, view)
    cache, known = _cached(tenant, key)
    if known is not None:
        note_outcome("over-budget-known")
        raise Unavailable(known if isinstance(known, str) and known != "over-budget" else refusal)
    try:
        return _budget.run(call, tenant.settings.render_budget)
    except RenderOverBudget:
        note_outcome("over-budget")
        log.warning("a view of %s went over its budget: %s", tenant.slug, key)
        _keep(cache, key, refusal, verdict_seconds())
        raise Unavailable(refusal) from None
    except TooLargeToShow as too_large:
        note_outcome("too-large")
        _keep(cache, key, too_large.message, VERDICT_SECONDS)
        raise


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
_STOPPED = "robot.request_stopped"  # environ key: the request's limit stopped it, how
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
        if has_request_context() and request.environ.get(_STOPPED) is not None:
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
    _, known = _cached(tenant, _verdict_key(tenant))
    if isinstance(known, str) and known.startswith(_LIMIT_VERDICT):
        note_outcome("over-limit-known")
        raise Unavailable(known, retry_after=5)  # passed its limit at this HEAD: at no cost
    environ = request.environ
    seconds = max(REQUEST_BUDGETS * tenant.settings.render_budget, REQUEST_MIN_SECONDS)

    def over() -> None:  # from the turn's watcher
        if turn.cpu_spent() > seconds:
            environ[_STOPPED_BY_CPU] = True
            environ.setdefault(_STOPPED, f"more than {seconds:g} s of CPU")
        else:
            environ.setdefault(_STOPPED, f"more than {REQUEST_WALL_SECONDS:g} s (a busy server)")

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
    took = request.environ.get(_STOPPED)
    if took is None:
        return response
    from app.wiki.responses import error_response

    response.close()
    log.warning("a request took %s: %s", took, request.path)
    stopped = Unavailable(_refusal(took), retry_after=5)
    tenant = current_tenant()
    if request.environ.get(_STOPPED_BY_CPU) and tenant is not None:  # not a busy host's
        key = _verdict_key(tenant)
        cache, _ = _cached(tenant, key)
        _keep(cache, key, stopped.message, VERDICT_SECONDS, stopped_too=True)
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
    if request.environ.get(_STOPPED) is not None:
        drop_stopped_git()


def _refusal(took: str) -> str:
    """The 503's message of a read that passed its limit, `took` saying which."""
    return f"{_LIMIT_VERDICT} {took}; ask for less at once, or clone the wiki with git"


class TooLargeToShow(Unavailable):
    """A view would send more than its bound (DIFF_VIEW_BYTES of diff): 503, saying what to do
    instead."""


# An image's sizes, as Otterwiki's file view reads them (AutoRoute: request.values).
_IMAGE_SIZES = ("thumbnail", "size", "width", "height")
# A search's options, as Otterwiki's search reads them (its form, each == "y").
_SEARCH_OPTIONS = ("is_casesensitive", "is_regexp", "in_history")
# URL arguments that name a page, keyed as Otterwiki opens them (review 56: `/Page.md/blame`
# and `/Page//blame` were new views of `/Page/blame`, each paying the whole limit again).
_PAGE_ARGS = frozenset({"path", "pagepath"})
# Seconds an over-budget verdict is kept (unless the wiki changes first): a first view that
# was slow for a passing reason (a worker just started) should not refuse the view for good.
VERDICT_SECONDS = 600


def _verdict_key(tenant, view: str | None = None) -> str:
    """The key of a verdict on this request's view: its endpoint, its URL's arguments as they
    name things (a revision as the commit it names, a page path case-folded: `/-/commit/<id>`
    under each prefix length and case once cost a budget each), the query the view reads, and
    the wiki at its HEAD; with `view`, that name and the wiki at its HEAD."""

    if view is not None:
        named = [("view", view)]
    else:
        named = sorted(
            (name, _named(tenant, name, value)) for name, value in (request.view_args or {}).items()
        )
    parts = [
        RENDER_VERSION,
        "view",
        tenant.slug,
        tenant.wiki.created_at,
        tenant.settings.render_budget,
        head_commit(tenant.storage.repo) or "",
        request.endpoint if view is None else "",
        named,
        _query_read(tenant) if view is None else [],
    ]
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _named(tenant, name: str, value) -> str:
    """What a URL argument names, as the view opens it: a revision as its commit, a page's
    path as Otterwiki's sanitize_pagename makes it (no `.md`, no doubled or trailing slash),
    case-folded, anything else case-folded."""
    from otterwiki.util import sanitize_pagename

    if name in _REVISION_ARGS:
        return _commit_named(tenant, value)
    if name in _PAGE_ARGS:
        return sanitize_pagename(str(value), handle_md=True).casefold()
    return str(value).casefold()


def _query_read(tenant) -> list:
    """What this request's view reads besides its URL arguments, as Otterwiki 2.26.1 reads
    it, and nothing else: the rest of a query or form changes nothing, and a key of the whole
    query let `?x=1`, `?x=2` ... cost the whole limit each (reviews 52, 56, 57).
    - view: the image sizes (from the query or a form, as whole numbers: Otterwiki's
      int_or_None, so `?width=abc`, `?width=1.0` and none are one view), whether the editor
      is asked (`edit`), and the revision (as its commit);
    - source: whether `raw` is in the query;
    - search: its form's query and options (each as == "y"), never the URL's."""
    from otterwiki.util import int_or_None

    values, form = request.values, request.form
    if request.endpoint == "view":
        revision = values.get("revision")
        return [
            *((name, name in values, int_or_None(values.get(name))) for name in _IMAGE_SIZES),
            ("edit", "edit" in values),
            ("revision", None if revision is None else _commit_named(tenant, revision)),
        ]
    if request.endpoint == "source":
        return [("raw", "raw" in request.args)]
    if request.endpoint == "search":
        return [form.get("query"), *(form.get(name) == "y" for name in _SEARCH_OPTIONS)]
    return []


# The URL arguments of Otterwiki's views that name a revision.
_REVISION_ARGS = ("revision", "rev_a", "rev_b")


def _commit_named(tenant, revision) -> str:
    """The full id of the commit `revision` names in the wiki; `revision` itself if none."""
    try:
        return tenant.storage.repo.commit(str(revision)).hexsha
    except Exception:  # gitdb's BadName, ValueError ...: the view answers it (404)
        return str(revision)


# Otterwiki's views whose cost grows with the wiki's history or size, not with one page: a
# commit of 99,000 files made its commit view 23 s and 54 MB, and the feeds ran until their
# worker was killed; 200,000 commits made a page's history 25 s and 220 MB; 10,000 pages made
# the sitemap 20 s. {endpoint: what to do instead, when it would take too long}.
BOUNDED_VIEWS = {
    "changelog": "look at a single page's history, or clone the wiki with git",
    "changelog_feed_rss": "look at a single page's history, or clone the wiki with git",
    "changelog_feed_atom": "look at a single page's history, or clone the wiki with git",
    "show_commit": "look at the change of a single page (its history's diff), or use git",
    "history": "clone the wiki with git to read the whole history",
    "diff": "compare revisions closer together, or use git",
    "blame": "clone the wiki with git and run git blame",
    "source": "read its text as it is with ?raw",
    "sitemap": "find pages with search",
}
# Pages up to which the sitemap gives each page's last change (`lastmod`, optional in the
# sitemap protocol): Otterwiki asks git for each page's log, 2 ms a page, and that wait is
# git's CPU, not the worker's (10,000 pages: 20 s, past any budget of the worker's own CPU).
SITEMAP_DATED_PAGES = 1000
# Entries (pages and folders) up to which page views carry the sidebar's page tree.
SIDEBAR_ENTRIES = 1000
# git's rename detection compares every removed file with every added one: a commit that
# replaced 1,000 pages of 30 KB with 1,000 others cost 5 s of git's CPU on each view. Past
# 100 of either, only exact renames are found (git diff -l).
RENAME_LIMIT = "-l100"
# Bytes of git's diff text up to which the commit and diff views show a change. A commit of
# 40 MB of pages made the commit view send 41 MB of HTML; that cost is git's CPU and the
# bytes sent, which the worker's CPU budget does not see. Past it, git is stopped.
DIFF_VIEW_BYTES = 4 * 2**20


def install_bounded_views(server: ModuleType) -> None:
    """Hold each of Otterwiki's BOUNDED_VIEWS to the render budget (CPU seconds): over it, the
    view answers 503 saying what to do instead, and its worker serves the next request.
    Installing twice does nothing.
    """
    _bound_the_sidebar()
    _bound_the_diffs(type(server.storage))
    _name_the_changed_files(type(server.storage))
    _list_attachments_when_embedded()
    _bound_the_word_diffs()
    _bound_the_draft_overview()
    views = server.app.view_functions
    for endpoint, instead in BOUNDED_VIEWS.items():
        original = views[endpoint]
        if getattr(original, "robot_bounded", False):
            continue
        if endpoint == "sitemap":
            original = _undated_when_large(original, server.storage)
        views[endpoint] = _bounded(original, instead)


def _bound_the_sidebar() -> None:
    """Leave the sidebar's page tree out where it would list more than SIDEBAR_ENTRIES, reading
    no page's head past that many: every page view carries it, and a wiki of 10,000 pages
    made each view 14 MB and 1 s."""
    from collections import OrderedDict

    from otterwiki.sidebar import SidebarPageIndex

    original, read_header = SidebarPageIndex.query, SidebarPageIndex.read_header
    if getattr(original, "robot_bounded", False):
        return

    def query(self):
        tree = original(self)
        return OrderedDict() if _entries(tree, SIDEBAR_ENTRIES) > SIDEBAR_ENTRIES else tree

    def bounded_read_header(self, filename):
        # One call per page: past SIDEBAR_ENTRIES pages the tree is left out anyway, and a
        # wiki of 2,000 pages read every page's head for every view.
        self.robot_heads_read = getattr(self, "robot_heads_read", 0) + 1
        if self.robot_heads_read > SIDEBAR_ENTRIES:
            return None
        return read_header(self, filename)

    query.robot_bounded = True
    SidebarPageIndex.query = query
    SidebarPageIndex.read_header = bounded_read_header


# CPU seconds one request's word diffs may spend. Otterwiki marks the changed words of each
# changed line with difflib's SequenceMatcher, whose cost is cubic in the words of a line at
# worst: one changed line of 12,000 words kept the editor's draft overview (the edit view,
# which no view budget holds) 22 s until its worker was killed, and 3,000 punctuation marks
# changed order took 226 s (thirty-first review). Past the seconds, the line being compared
# and the rest show whole as removed and added: Otterwiki's own answer for lines too unlike.
WORD_DIFF_SECONDS = 0.5


def _bound_the_word_diffs() -> None:
    """Hold Otterwiki's `diff_words` (otterwiki.util; every side-by-side diff: the diff and
    commit views and the draft overview) to WORD_DIFF_SECONDS of CPU in each request, under
    the render budget's timer (a slice of a view's budget where one runs). Installing twice
    does nothing."""
    import otterwiki.util
    from flask import g
    from flask import has_request_context

    original = otterwiki.util.diff_words
    if getattr(original, "robot_bounded", False):
        return

    def diff_words(line_a, line_b, min_ratio=0.4):
        if not has_request_context():
            return original(line_a, line_b, min_ratio)
        left = g.get("robot_word_diff_left", WORD_DIFF_SECONDS)
        if left <= 0:
            return None
        started = time.process_time()
        try:
            return _within(lambda: original(line_a, line_b, min_ratio), left)
        finally:
            g.robot_word_diff_left = left - (time.process_time() - started)

    diff_words.robot_bounded = True
    diff_words.__wrapped__ = original
    otterwiki.util.diff_words = diff_words


def _bound_the_draft_overview() -> None:
    """Hold the editor's draft overview (Otterwiki's `Page._draft_overview`: both texts
    highlighted, diffed line by line, laid side by side) to the render budget; past it, the
    overview is made again without the comparison (its buttons, and a notice). The edit view
    is no bounded view (a 503 would keep the page's editor from its author), and an 80,000-line
    draft of a 400 KB page kept it 30 s until its worker was killed (thirty-second review).
    Installing twice does nothing."""
    import otterwiki.wiki
    from flask import g
    from flask import has_request_context

    original = otterwiki.wiki.Page._draft_overview
    if getattr(original, "robot_bounded", False):
        return

    def skippable(function):
        """`function`, answering [] (nothing to compare) while a request skips the diff."""

        def skipping(*args, **kwargs):
            if has_request_context() and g.get("robot_skip_draft_diff"):
                return []
            return function(*args, **kwargs)

        skipping.__wrapped__ = function
        return skipping

    # As the overview calls them (wiki.py imports them by name): the diff and the highlighting.
    otterwiki.wiki.diff_content = skippable(otterwiki.wiki.diff_content)
    otterwiki.wiki.pygments_render_lines = skippable(otterwiki.wiki.pygments_render_lines)

    def _draft_overview(self, draft, draft_revision, changes):
        from otterwiki.helper import toast

        tenant = current_tenant()
        call = lambda: original(self, draft, draft_revision, changes)  # noqa: E731
        if tenant is None or _budget.armed:
            return call()
        try:
            return _budget.run(call, tenant.settings.render_budget)
        except RenderOverBudget:
            note_outcome("over-budget")
        toast("The draft is too large to compare with the page here.", "warning")
        g.robot_skip_draft_diff = True
        try:
            return call()
        finally:
            g.robot_skip_draft_diff = False

    _draft_overview.robot_bounded = True
    _draft_overview.__wrapped__ = original
    otterwiki.wiki.Page._draft_overview = _draft_overview


def _within(call, seconds: float):
    """`call()`, or None once it used `seconds` of CPU: a slice of the view's budget where one
    runs (the view's own expiry still ends the view), else a budget of its own."""
    if _budget.armed:
        try:
            return _budget.slice(call, seconds)
        except SliceOver:
            return None
    try:
        return _budget.run(call, seconds)
    except RenderOverBudget:
        return None


def _bound_the_diffs(storage_class) -> None:
    """Make the commit and diff views of `storage_class` (Otterwiki's GitStorage) read at most
    DIFF_VIEW_BYTES of git's diff, raising TooLargeToShow (503, saying to use git) past it,
    and find renames only among few files (RENAME_LIMIT); the page diff view diffs its
    page's files only (_page_files).

    Otterwiki's own methods, but for reading git's output: its `show_commit` and `diff` (2.26.1)
    return `repo.git.show(...)` and `repo.git.diff(...)` whole (GitPython's Git has __slots__,
    so those calls cannot be swapped for a request).
    """
    from git.exc import BadName
    from otterwiki.gitstorage import StorageError

    if getattr(storage_class.show_commit, "robot_bounded", False):
        return

    def show_commit(self, revision):
        self._validate_revision(revision)
        try:
            commit = self.repo.commit(revision)
        except BadName:
            raise StorageError(f"No commit found for ref {revision}") from None
        metadata = self._get_metadata_of_commit(commit)
        shown = _git_within(
            self.repo.git,
            ["show", RENAME_LIMIT, "--format=%b", revision],
            "look at the change of a single page (its history's diff), or use git",
        )
        return metadata, shown

    def diff(self, rev_a, rev_b):
        self._validate_revision(rev_a)
        self._validate_revision(rev_b)
        paths = _page_files(self.repo.git, rev_a, rev_b)
        return _git_within(
            self.repo.git,
            ["diff", RENAME_LIMIT, rev_a, rev_b, "--", *paths],
            "compare revisions closer together, or use git",
        )

    for method in (show_commit, diff):
        method.robot_bounded = True
        method.__wrapped__ = getattr(storage_class, method.__name__)
        setattr(storage_class, method.__name__, method)


def _name_the_changed_files(storage_class) -> None:
    """Make the commit metadata of `storage_class` (Otterwiki's GitStorage: each page view,
    history entry, blame line's commit and commit view) name the files the commit changed
    without counting their lines. Otterwiki's `_get_metadata_of_commit` (2.26.1) reads GitPython's
    `commit.stats`, a `git diff --numstat` of the whole commit: a last commit rewriting four
    pages of 500,000 lines cost 4 s of git's CPU on every view of each (review 48), and only
    the names are used (the page diff's rename following, the feeds). `git diff-tree
    --name-only` compares trees only, as Stats does: first parent, no renames, the root
    commit against nothing. Each value is {} where Stats gave line counts."""
    original = storage_class._get_metadata_of_commit
    if getattr(original, "robot_bounded", False):
        return

    def _get_metadata_of_commit(self, commit):
        return original(self, _NamingChangedFiles(commit))

    _get_metadata_of_commit.robot_bounded = True
    _get_metadata_of_commit.__wrapped__ = original
    storage_class._get_metadata_of_commit = _get_metadata_of_commit


class _NamingChangedFiles:
    """A GitPython commit whose `stats.files` maps each file the commit changed to {}
    (_name_the_changed_files); every other attribute is the commit's, and it hashes and
    compares as the commit does: Otterwiki caches the metadata by commit (ttl_lru_cache), and
    a new wrapper per call missed it, a diff-tree per attachment of a page (review 49)."""

    def __init__(self, commit):
        self._commit = commit

    def __getattr__(self, name: str):
        return getattr(self._commit, name)

    def __hash__(self) -> int:
        return hash(self._commit)

    def __eq__(self, other) -> bool:
        return self._commit == getattr(other, "_commit", other)

    @property
    def stats(self) -> SimpleNamespace:
        commit = self._commit
        against = [commit.parents[0].hexsha] if commit.parents else ["--root"]
        names = commit.repo.git.diff_tree(
            "-r", "--name-only", "-z", "--no-renames", "--no-commit-id", *against, commit.hexsha
        )
        return SimpleNamespace(files={name: {} for name in names.split("\0") if name})


def _list_attachments_when_embedded() -> None:
    """Make Otterwiki's AttachmentListEmbedding list the page's attachments only when a page
    embeds the list, once per render. Its page_render_context (2.26.1) listed them, each with
    its last commit, on every render of every page: 600 attachments cost 3 s of each view,
    2,000 a 503 on each (review 49). The plugin is registered again as a subclass: pluggy keeps
    the methods it found at registration."""
    from otterwiki.plugins import hookimpl
    from otterwiki.plugins import plugin_manager
    from otterwiki.renderer_embeddings import AttachmentListEmbedding

    registered = [p for p in plugin_manager.get_plugins() if type(p) is AttachmentListEmbedding]
    if not registered:
        return  # installed already

    from flask import g

    class AttachmentListWhenEmbedded(AttachmentListEmbedding):
        """Its page is its request's only: the page index renders pages for their headings
        without a page context, and found the last page another request rendered (review
        50), possibly of another wiki."""

        page = None
        _listed: list | None = None
        _request: object = None

        @hookimpl
        def page_render_context(self, page, preview: bool):
            self.page, self.preview, self._listed = page, preview, None
            self._request = g._get_current_object()

        @property
        def attachments(self) -> list:
            if self.page is None or self._request is not g._get_current_object():
                return []
            if self._listed is None:
                self._listed = self.page._attachments_list()
            return self._listed

    for plugin in registered:
        plugin_manager.unregister(plugin)
    plugin_manager.register(AttachmentListWhenEmbedded())


def _page_files(git, rev_a: str, rev_b: str) -> list[str]:
    """The files the page diff view of this request shows: its page's file, and the page's
    file names at `rev_a` and `rev_b` in the page's history (`git log --follow`), as Otterwiki's
    diff view (2.26.1) finds them to follow renames; a revision matches by prefix, as there.
    [] (the whole tree) outside a page's request.

    Otterwiki diffs the whole tree and shows the page's part: two neighbouring revisions of a
    page were refused as too large when a push between them, or the same commit, changed other
    large files.
    """
    from flask import has_request_context
    from flask import request
    from otterwiki.helper import get_filename

    if not has_request_context() or not (request.view_args or {}).get("path"):
        return []
    filename = get_filename(request.view_args["path"])
    files = {filename}
    history = git.execute(
        ["git", "log", "--follow", "--name-only", "-z", "--format=%x01%H", "--", filename]
    )
    # Each entry: \x01, the commit id, NUL, newline, then the page's name then, NUL-ended.
    for entry in history.split("\x01")[1:]:
        revision, _, names = entry.partition("\0")
        if revision.startswith(rev_a) or revision.startswith(rev_b):
            files.update(name for name in names.lstrip("\n").split("\0") if name)
    return sorted(files)


def _git_within(git, args: list[str], instead: str) -> str:
    """The output of `git <args>` run by `git` (GitPython's Git of a repo), UTF-8 with U+FFFD
    for what is not, without its last newline. Past DIFF_VIEW_BYTES git is
    stopped and TooLargeToShow raised, saying `instead`; GitPython's GitCommandError if git
    fails."""
    process = git.execute(["git", *args], as_process=True)
    try:
        output = process.stdout.read(DIFF_VIEW_BYTES + 1)
        if len(output) > DIFF_VIEW_BYTES:
            raise TooLargeToShow(f"this change is too large to show on a page; {instead}")
        process.wait()
    finally:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()
        process.stdout.close()
    # For reading only: bytes that are no UTF-8 (a Latin-1 text file) show as U+FFFD.
    text = output.decode("utf-8", "replace")
    return text[:-1] if text.endswith("\n") else text


def _entries(tree, most: int) -> int:
    """The entries of a sidebar page tree, counted up to a little past `most`."""
    count, todo = 0, [tree]
    while todo and count <= most:
        for entry in todo.pop().values():
            count += 1
            if entry.children:
                todo.append(entry.children)
    return count


def _undated_when_large(sitemap, storage):
    """Otterwiki's sitemap view, without the pages' dates past SITEMAP_DATED_PAGES pages."""

    def sitemap_view(*args, **kwargs):
        files, _ = storage.list()
        if sum(name.endswith(".md") for name in files) <= SITEMAP_DATED_PAGES:
            return sitemap(*args, **kwargs)
        # The view reads `storage.metadata(filename)` per page and leaves out what is None.
        storage.metadata = lambda *_args, **_kwargs: None
        try:
            return sitemap(*args, **kwargs)
        finally:
            del storage.metadata

    return sitemap_view


def _bounded(view, instead: str):
    def bounded(*args, **kwargs):
        return run_bounded(
            lambda: view(*args, **kwargs),
            f"this view is too large to make in time for this wiki; {instead}",
        )

    bounded.robot_bounded = True
    bounded.__wrapped__ = view
    return bounded
