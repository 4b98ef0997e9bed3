"""Otterwiki's page index, held to the render budget, built once per wiki state, and never
refused for the tables of contents it has not read yet.

Otterwiki builds a `PageIndex` for the A-Z index (`/-/index`), for a folder without a page of
its own, for the `{{PageIndex}}` embedding, and for every opening of the editor (its link
list). Each build reads every page's table of contents (`get_ftoc`): from Otterwiki's cache row
when the page has not changed since, else by rendering the page. A wiki of 1,000 pages pushed at
once needed 7 s of CPU for its first build, so the index and the editor of every page answered
503 over the budget; each later build still took 0.7 s.

Here:
- A build renders tables of contents for at most TOC_SHARE of the render budget (CPU), a render
  stopped where the share ends. Past it, a page whose table is not cached yet is listed under
  its name alone, and the view says that its headings follow on a later view; each view reads
  more of them, as each render it pays for is kept (Otterwiki's cache rows and the render
  cache). A page whose table is stopped in two builds (the second time it came first) is
  listed without headings from then on, so that it cannot hold back the pages after it (its
  own view writes the table, which later builds read).
- A complete build is kept in the worker's memory (MEMO_SIZE of them), keyed by the wiki, its
  HEAD, the build's arguments and the app config: the next view of an unchanged wiki costs
  nothing to build.
- A build inside a page's render (the `{{PageIndex}}` embedding) is left whole, under that
  render's budget: the render is cached as it comes out.
- The build is Otterwiki's, but for its two searches of every page for each page (has it
  pages below it? is its folder listed yet?), which grew with the square of the pages: 10,000
  pages took seconds for those alone. `list_pages` looks both up in sets.
- The whole build stays held to the budget: past it, the index views answer 503 saying to
  search, kept until the wiki changes, or for RETRY_SECONDS when the build read headings (the
  next one reads fewer); the editor opens with the pages listed in time, without a notice.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from functools import partial
from types import ModuleType

from app.core.errors import Unavailable
from app.pages.files import head_commit
from app.wiki.otterwiki.budget import SliceOver
from app.wiki.otterwiki.budget import budgeted
from app.wiki.otterwiki.budget import current_tenant
from app.wiki.otterwiki.budget import drop_stopped_git
from app.wiki.otterwiki.budget import within_slice
from app.wiki.otterwiki.render import note_outcome
from app.wiki.otterwiki.render import stable_text
from app.wiki.otterwiki.verdicts import VERDICT_SECONDS
from app.wiki.otterwiki.verdicts import run_bounded

# Share of the render budget a build may spend rendering tables of contents not yet cached;
# the rest is the build's own: about 0.1 s per 1,000 pages (bench/page_index.py), 1 s for the
# 10,000 a push may bring. At half, a first view of 4,000 pages was over the budget.
TOC_SHARE = 0.25
# Complete builds each worker keeps (least recently used first out).
MEMO_SIZE = 32
REFUSAL = "this wiki has too many pages to list them all in time; find pages with search"
# Seconds an over-budget verdict on a build that read headings is kept: a wiki of 3,000 pushed
# pages went over once, and its index stayed 503 until the next write.
RETRY_SECONDS = 30
# Otterwiki's views that show the index itself (the A-Z index, a folder without a page): they
# answer 503 past the budget and say when headings are missing. The editor (which lists the
# pages for its link dialog) does neither.
LISTING_ENDPOINTS = frozenset({"pageindex", "view"})
# Said on a view whose index left out some pages' headings (Otterwiki's toast).
PARTIAL_NOTICE = (
    "The headings of {count} pages are not listed yet: they are being read, a part on each "
    "view of this index."
)


class _Build:
    """One top-level build's reading of tables of contents: the cache rows Otterwiki holds,
    read at once (one query, not one a page), the CPU (process seconds, as the render budget
    counts) it may still spend rendering the missing ones, and the pages left without."""

    def __init__(self, server: ModuleType, seconds: float):
        self.server = server
        self.share = seconds
        self.until = time.process_time() + seconds
        self.skipped = 0
        self.rendered = 0  # tables of contents it set out to render
        self._rows: dict[str, tuple] | None = None

    def left(self) -> float:
        """Seconds of CPU left for rendering tables of contents (0 or less: none)."""
        return self.until - time.process_time()

    def cached_toc(self, filename: str, mtime) -> list | None:
        """The table of contents Otterwiki's cache holds for `filename` as of `mtime` (its
        last change, a datetime), or None: the lookup of `otterwiki.helper.get_ftoc` without
        its render."""
        from otterwiki.helper import sha256sum
        from otterwiki.models import Cache

        if self._rows is None:
            query = self.server.db.session.query(Cache.key, Cache.datetime, Cache.value)
            self._rows = {key: (stamp, value) for key, stamp, value in query}
        row = self._rows.get(sha256sum(f"ftoc://{filename}"))
        if row is None or row[0] is None:
            return None
        if mtime.tzinfo is None:
            mtime = mtime.astimezone()  # naive is local time, as Otterwiki's TimeStamp reads it
        if row[0] < mtime:
            return None
        try:
            value = json.loads(row[1])
        except (TypeError, ValueError):
            return None
        return value.get("ftoc") if value.get("filename") == filename else None


_building = threading.local()
_memo: OrderedDict[str, dict] = OrderedDict()
# Pages (wiki, file, last change) whose table of contents was stopped in a build, and those
# stopped in two: these take more than a whole share, and are listed without headings from
# then on (their own view writes the table, which the next build reads), rather than take
# every build's share before the pages after them.
_stopped: dict[tuple, None] = {}
_abandoned: dict[tuple, None] = {}
# Pages each of the two remembers, the oldest forgotten first.
REMEMBERED = 10_000


def install_page_index(server: ModuleType) -> None:
    """Wrap `otterwiki.pageindex.PageIndex.__init__` and the `get_ftoc` it calls, as the
    module docstring says. `server` is the booted `otterwiki.server`. Installing twice does
    nothing."""
    import otterwiki.pageindex
    from flask import request
    from otterwiki.helper import toast
    from otterwiki.pageindex import PageIndex

    if getattr(PageIndex.__init__, "robot_page_index", False):
        return
    whole_build = partial(list_pages, server)
    read_toc = otterwiki.pageindex.get_ftoc

    def build(self, path: str | None = None, display_page_path: bool = False):
        tenant = current_tenant()
        if tenant is None:
            return whole_build(self, path, display_page_path)
        key = _memo_key(tenant, server.app.config, path, display_page_path)
        kept = _memo.get(key)
        if kept is not None:
            _memo.move_to_end(key)
            self.__dict__.update(kept)
            note_outcome("index-kept")
            return None
        if budgeted():
            # Inside a page's render ({{PageIndex}}): that render's budget holds it, and the
            # render is cached whole, so the index it embeds must be whole too.
            return whole_build(self, path, display_page_path)
        reading = _Build(server, tenant.settings.render_budget * TOC_SHARE)
        _building.reading = reading
        # A build that read headings is judged for a short while: the next one reads fewer.
        call = partial(whole_build, self, path, display_page_path)
        verdict = partial(_verdict_seconds, reading)
        try:
            run_bounded(call, REFUSAL, verdict_seconds=verdict)
        except Unavailable:
            if request.endpoint in LISTING_ENDPOINTS:
                raise
            # The editor lists the pages for its link dialog: it opens with those found in
            # time, rather than not at all.
            server.db.session.rollback()
            return None
        finally:
            _building.reading = None
        if reading.skipped:
            if request.endpoint in LISTING_ENDPOINTS:
                toast(PARTIAL_NOTICE.format(count=reading.skipped), "warning")
            return None
        _memo[key] = dict(self.__dict__)
        while len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)
        return None

    def get_ftoc(filename, mtime=None):
        reading = getattr(_building, "reading", None)
        if reading is None:
            return read_toc(filename, mtime)
        if mtime is None:  # Otterwiki's build passes none: the page's key needs its change
            try:
                mtime = server.storage.mtime(filename)
            except OSError:
                return read_toc(filename, mtime)
        cached = reading.cached_toc(filename, mtime)
        if cached is not None:
            return cached
        page = _page_key(current_tenant(), filename, mtime)
        if page in _abandoned:
            return []
        left = reading.left()
        if left > 0:
            reading.rendered += 1
            try:
                return within_slice(lambda: read_toc(filename, mtime), left)
            except SliceOver:
                # Stopped anywhere in the page's render or in the write of its row.
                server.db.session.rollback()
                drop_stopped_git(kill=False)  # the build goes on
                # Stopped in two builds, each time with half the build's share or more: it
                # takes more than a share. A stop with less says nothing of the page (the
                # build's own work took the rest: 999 of 1,000 pages listed on a loaded host).
                if left >= reading.share / 2 and _remember(_stopped, page):
                    _remember(_abandoned, page)
                    return []
        reading.skipped += 1
        return []

    build.robot_page_index = True
    build.__wrapped__ = PageIndex.__init__  # Otterwiki's own, for the tests that compare
    PageIndex.__init__ = build
    otterwiki.pageindex.get_ftoc = get_ftoc


def _verdict_seconds(reading: _Build) -> float:
    """How long an over-budget verdict on a build is kept: RETRY_SECONDS when it read
    headings (each build reads more, so a later one may fit), else until the wiki changes."""
    return RETRY_SECONDS if reading.rendered else VERDICT_SECONDS


def _remember(pages: dict[tuple, None], page: tuple) -> bool:
    """Add `page` to `pages` (forgetting the oldest past REMEMBERED); True if it was there."""
    if page in pages:
        return True
    pages[page] = None
    while len(pages) > REMEMBERED:
        pages.pop(next(iter(pages)))
    return False


def _page_key(tenant, filename: str, mtime) -> tuple:
    return (tenant.slug, tenant.wiki.created_at, filename, str(mtime))


def _memo_key(tenant, config, path: str | None, display_page_path: bool) -> str:
    """Digest of what a build reads: the wiki (slug and creation time), its HEAD, the build's
    arguments and the app config (how names are cased and shown)."""
    parts = [
        tenant.slug,
        tenant.wiki.created_at,
        head_commit(tenant.storage.repo) or "",
        path,
        display_page_path,
        stable_text(dict(config)),
    ]
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()


def list_pages(server: ModuleType, index, path: str | None = None, display_page_path=False):
    """Fill `index` (an `otterwiki.pageindex.PageIndex`) as its own `__init__` does in
    Otterwiki 2.26.1: `path`, `breadcrumbs`, `index_depth`, `pagename`, and `toc`, the entries
    by first letter, each folder without a page of its own listed before its first page. Each
    page's table of contents is read through `otterwiki.pageindex.get_ftoc` (wrapped above).

    Otterwiki's searches every page for each page ("does another page lie below this one?",
    "is this folder listed yet?"), which grow with the square of the pages, are set lookups
    here; everything else is its own helpers, called in its order, so the index reads the
    same (tests/wiki/test_page_index_build.py compares the two). Returns None.
    """
    import otterwiki.pageindex
    from otterwiki.helper import get_breadcrumbs
    from otterwiki.helper import get_filename
    from otterwiki.helper import get_pagename
    from otterwiki.helper import get_pagename_for_title
    from otterwiki.helper import url_for
    from otterwiki.pageindex import PageIndexEntry
    from otterwiki.util import join_path
    from otterwiki.util import split_path

    config, storage = server.app.config, server.storage
    index.toc = {}
    index.path = index.breadcrumbs = index.pagename = None
    index.index_depth = 0
    if path is not None:
        index.path = (path if config["RETAIN_PAGE_NAME_CASE"] else path.lower()).rstrip("/")
        index.breadcrumbs = get_breadcrumbs(get_pagename(path, full=True))
        index.index_depth = len(split_path(index.path))
    if index.path:
        index.pagename = get_pagename_for_title(filepath=index.path, full=False)
    files, _ = storage.list(p=index.path)
    pages = [name for name in files if name.endswith(".md")]
    # Every folder some page lies in, as "<folder>/": a page has children when its own name
    # without ".md" is one (compared with the names as listed, as Otterwiki compares them).
    folders = {page[: cut + 1] for page in pages for cut, c in enumerate(page) if c == "/"}
    listed_folders: set[str] = set()

    def view_url(page_path: str, **anchor) -> str:
        return url_for("view", path=page_path, **anchor)

    for name in pages:
        filename = os.path.join(index.path or "", name)
        letter = get_pagename_for_title(name, full=True)[0].upper()
        entries = index.toc.setdefault(letter, [])
        above = split_path(name)[:-1]
        for depth in range(len(above)):
            folder = join_path(above[: depth + 1])
            folder_full = join_path([index.path or "", folder])
            if storage.exists(get_filename(folder_full)) or folder_full in listed_folders:
                continue  # a page of its own lists it, or it is listed already
            entries.append(
                PageIndexEntry(
                    depth=depth,
                    title=get_pagename_for_title(folder, full=False),
                    url=view_url(get_pagename(folder_full, full=True)),
                    toc=[],
                    has_children=True,
                )
            )
            listed_folders.add(folder_full)
        # The first heading names the page (its casing); the others are its table of contents.
        pagename = get_pagename(filename, full=False)
        headings = otterwiki.pageindex.get_ftoc(filename)
        if headings:
            pagename = get_pagename(filename, full=False, header=headings[0][3])
        page_url = get_pagename(filename, full=True, header=pagename)
        # Each heading: (level, HTML title, depth, text title, anchor), as get_ftoc gives.
        toc = [(h[2], h[3], view_url(page_url, _anchor=h[4])) for h in headings[1:]]
        title = get_pagename_for_title(filename, full=display_page_path, header=pagename)
        if index.path is not None and display_page_path:
            if title.lower().startswith(index.path.lower()):
                title = title[len(index.path) + 1 :]
        entries.append(
            PageIndexEntry(
                depth=len(split_path(filename)) - 1 - index.index_depth,
                title=title,
                url=view_url(page_url),
                toc=toc,
                has_children=filename[:-3] + "/" in folders,
            )
        )
