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

A render that spends more than the budget of CPU (budget.py) stops, and the page shows its
source, escaped, under a short notice; that verdict is cached like a render. The same cache
keeps the verdicts on whole views (verdicts.py), each entry within its wiki owner's share.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import threading
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote

from bs4 import ParserRejectedMarkup
from flask import has_request_context
from flask import request
from flask import url_for
from markupsafe import escape

from app.pages.files import head_commit
from app.wiki.otterwiki.budget import RenderOverBudget
from app.wiki.otterwiki.budget import RenderStalled
from app.wiki.otterwiki.budget import current_tenant
from app.wiki.otterwiki.budget import drop_stopped_git
from app.wiki.otterwiki.budget import request_lowered
from app.wiki.otterwiki.budget import request_stopped
from app.wiki.otterwiki.budget import run_budgeted
from app.wiki.otterwiki.budget import uninterrupted

log = logging.getLogger("robot.wiki.render")

# Our part of every cache key: bump it whenever this package changes what a render returns.
RENDER_VERSION = "robot-render-2"
# The response header naming each render of the request in order: hit, miss or over-budget
# (and index-kept: a page index built before, app.wiki.otterwiki.page_index).
RENDER_HEADER = "X-Robot-Render"
# Library requirements of a page shown as its source: it needs none of them.
_NO_LIBRARIES = {"requires_mermaid": False, "requires_mathjax": False, "requires_datatables": False}

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


def last_render_stalled() -> bool:
    """True when this request's last render stalled (RenderStalled): what it made (its source
    view, a table of contents of nothing) says nothing about the page, and is not to be kept
    beyond the render cache's STALLED_SECONDS."""
    from flask import g

    return has_request_context() and getattr(g, "robot_renders", [None])[-1] == "stalled"


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
        rendered = run_budgeted(lambda: original(renderer, text, cursor, **kwargs), budget)
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


# Seconds a stalled render's source view is kept (RenderStalled: its sanitizer got too little
# of the CPU to finish in time): a busy minute, not the page's verdict for good (review 59).
# Each stall of the same render within STALLS_REMEMBERED seconds keeps it twice as long as the
# last, up to STALLED_MAX_SECONDS: a page that stalls on every try costs a try an hour, not one
# a minute (review 60). A stall in a lowered request (SCHED_IDLE: its child gets nothing of a
# busy host, and a visitor can lower the visitors' pool) is shown to that request only, and
# counts no stall (review 61: kept, it held another owner's page as source for hours).
STALLED_SECONDS = 60
STALLED_MAX_SECONDS = 3600
STALLS_REMEMBERED = 24 * 3600
# Each way a render stops: its outcome (RENDER_HEADER) and what the page says.
_STOPS = {
    RenderOverBudget: ("over-budget", "took more than {budget:g} s to render"),
    RenderStalled: ("stalled", "could not be made in time on a busy server; try again shortly"),
    RecursionError: ("too-deep", "nests deeper than the renderer can follow"),
    ParserRejectedMarkup: ("unparsable", "holds markup the HTML parser rejects"),
}


def cached(tenant, key: str):
    """(the render cache, what it holds under `key` or None); (None, None) when the cache
    cannot be read: a broken cache must not break the wiki, which computes as if it were
    empty."""
    try:
        cache = _cache_for(tenant.settings)
        return cache, cache.get(key)
    except Exception:
        log.exception("render cache unreadable; computing without it")
        return None, None


def keep(cache, key: str, value, seconds: float | None = None, stopped_too: bool = False) -> None:
    """Store `value` under `key` in `cache` (None: nothing), for `seconds` (None: until
    evicted), within its wiki owner's share (_owner_tag); a failure only loses it. Nothing
    once the request's limit passed, but with `stopped_too`: what it computed since may rest on
    git refused or killed under it (a page's attachment list came out empty and was kept so,
    review 50)."""
    if cache is None or (request_stopped() and not stopped_too):
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
_HELD = "robot-owner-held:"  # + owner's tag: (its current generation, the bytes stored in it)
# Bytes an entry takes in the cache besides its pickled value: its row, key and tag, and their
# indexes (diskcache 5.6 on SQLite: ~310 measured with these keys and tags). Counting the value
# alone let an owner of many tiny renders (previews) hold 3.4 times its share (review 59).
ENTRY_BYTES = 512


def _owner_tag(cache, owner: str, size: int) -> str:
    """The tag (str) to store an entry of `size` bytes (pickled) of `owner`'s wikis (a DID)
    under in `cache`, counted with ENTRY_BYTES: its current generation's, a new one's when the
    current is full, after which the generation before the last is dropped. The tag names the
    owner by a digest: a DID may be long (did:web), and each entry and index holds it. Atomic
    across workers (diskcache's transact); the count is stored again with each entry, so the
    cache's own eviction (least recently stored) never takes it before the entries it counts.
    Entries expired or evicted stay counted, so an owner holds at most what its count says."""
    half_share = cache.size_limit * OWNER_SHARE / 2
    owner = hashlib.sha256(owner.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    size += ENTRY_BYTES
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
        cursor = one_cursor(text, cursor)
        key = render_key(self, text, cursor, kwargs, tenant, version)
        cache, found = cached(tenant, key)
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
        if outcome != "stalled":
            keep(cache, key, (outcome, rendered))
        elif not request_lowered():
            keep(cache, key, (outcome, rendered), _stalled_for(cache, key))
        return rendered

    markdown.robot_render_cache = True
    markdown.__wrapped__ = original
    OtterwikiRenderer.markdown = markdown
    server.app.after_request(_report_renders)


def _stalled_for(cache, key: str) -> float:
    """Seconds to keep the stalled render under `key` (a render key) in `cache`: STALLED_SECONDS,
    doubled for each stall of it remembered (STALLS_REMEMBERED), at most STALLED_MAX_SECONDS;
    this stall is remembered too."""
    _, stalls = cached(current_tenant(), key + ":stalls")
    stalls = stalls if isinstance(stalls, int) else 0
    keep(cache, key + ":stalls", stalls + 1, STALLS_REMEMBERED)
    return min(STALLED_SECONDS * 2 ** min(stalls, 32), STALLED_MAX_SECONDS)


def one_cursor(text: str, cursor):
    """`cursor` (the editor's line, as the preview's form sent it: any str, or None) as the
    one value for the line Otterwiki's markdown (2.26.1) puts the cursor on: it reads
    `int(cursor) + 1` (0 when that is no number), at most the text's last line, and a line of
    0 or less is one place. Every other spelling was one more render and entry (review 59:
    `cursor_line=abc`, `99999999999`, ...). None stays None: no cursor."""
    if cursor is None:
        return None
    try:
        line = int(cursor) + 1
    except (TypeError, ValueError):
        line = 0
    if line > 0:  # Otterwiki's text: a newline added when it ends without one
        line = min(line, len((text if text.endswith("\n") else text + "\n").splitlines()) - 1)
    return max(line, 0) - 1


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
