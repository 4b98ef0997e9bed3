"""Verdicts on whole views: a view that went past its budget answers 503 at once until its wiki
changes.

A bounded view (bounded_views.py) or a read stopped by its limit (request_limit.py) keeps its
verdict in the render cache (render.py) under `verdict_key`: the view as Otterwiki would open
it, so that no spelling of a path or query pays the whole budget again, and nothing a cheap
request asks sits on another view.
"""

from __future__ import annotations

import hashlib
import logging

from flask import request

from app.core.errors import Unavailable
from app.pages.files import head_commit
from app.wiki.otterwiki.budget import RenderOverBudget
from app.wiki.otterwiki.budget import current_tenant
from app.wiki.otterwiki.budget import run_budgeted
from app.wiki.otterwiki.render import RENDER_VERSION
from app.wiki.otterwiki.render import cached
from app.wiki.otterwiki.render import keep
from app.wiki.otterwiki.render import note_outcome
from app.wiki.otterwiki.render import one_cursor

log = logging.getLogger("robot.wiki.verdicts")


def run_bounded(call, refusal: str, verdict_seconds=lambda: VERDICT_SECONDS, view=None):
    """Return `call()` (a view of the current request) within the render budget; past it,
    raise Unavailable(`refusal`), and remember that verdict for this request's view at the
    wiki's HEAD (verdict_key; `view`, a str, names it instead, for views that share one
    verdict) for `verdict_seconds()`, so the same view answers at once until the wiki changes
    or that time is up; the same for a view too large to show (TooLargeToShow). Outside a
    wiki's request it just calls."""
    tenant = current_tenant()
    if tenant is None:
        return call()
    key = verdict_key(tenant, view)
    cache, known = cached(tenant, key)
    if known is not None:
        note_outcome("over-budget-known")
        raise Unavailable(known if isinstance(known, str) and known != "over-budget" else refusal)
    try:
        return run_budgeted(call, tenant.settings.render_budget)
    except RenderOverBudget:
        note_outcome("over-budget")
        log.warning("a view of %s went over its budget: %s", tenant.slug, key)
        keep(cache, key, refusal, verdict_seconds())
        raise Unavailable(refusal) from None
    except TooLargeToShow as too_large:
        note_outcome("too-large")
        keep(cache, key, too_large.message, VERDICT_SECONDS)
        raise


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


def verdict_key(tenant, view: str | None = None) -> str:
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
    case-folded where the wiki folds page names' case (RETAIN_PAGE_NAME_CASE off), anything
    else as written: a search's query, an attachment's name (review 61: two regular
    expressions that differ by case, `\\D` and `\\d`, were one key, so a costly one's 503
    answered the cheap one)."""
    from flask import current_app
    from otterwiki.util import sanitize_pagename

    if name in _REVISION_ARGS:
        return _commit_named(tenant, value)
    if name in _PAGE_ARGS:
        path = sanitize_pagename(str(value), handle_md=True)
        return path if current_app.config.get("RETAIN_PAGE_NAME_CASE") else path.casefold()
    return str(value)


def _query_read(tenant) -> list:
    """What this request's view reads besides its URL arguments, as Otterwiki 2.26.1 reads
    it, and nothing else: the rest of a query or form changes nothing, and a key of the whole
    query let `?x=1`, `?x=2` ... cost the whole limit each (reviews 52, 56, 57), while a key
    missing what it reads put one costly variant's 503 on the cheap one (review 59: the
    side-by-side diff's on the inline diff).
    - view: the image sizes (from the query or a form, as whole numbers: Otterwiki's
      int_or_None, so `?width=abc`, `?width=1.0` and none are one view), whether the editor
      is asked (`edit`), and the revision (as its commit);
    - source: whether `raw` is in the query;
    - diff: inline or side by side, from `?view` or else the session (Page.diff);
    - preview: the posted text (its digest; none: the page's own) and the cursor's line;
    - search: its form's query (unless the URL names one) and options (each as == "y"),
      never the URL's query string."""
    from otterwiki.util import int_or_None

    values, form = request.values, request.form
    endpoint = request.endpoint
    if endpoint == "view":
        revision = values.get("revision")
        return [
            *((name, name in values, int_or_None(values.get(name))) for name in _IMAGE_SIZES),
            ("edit", "edit" in values),
            ("revision", None if revision is None else _commit_named(tenant, revision)),
        ]
    if endpoint == "source":
        return [("raw", "raw" in request.args)]
    if endpoint == "diff":
        return [("view", _diff_view())]
    if endpoint == "preview":  # no text: the page's own; else the text sent, and its cursor
        text = form.get("content")
        if text is None:
            return [None]
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        return [digest, one_cursor(text, form.get("cursor_line"))]
    if endpoint == "search":  # the form's query where the URL has none
        asked = None if "query" in (request.view_args or {}) else form.get("query")
        return [asked, *(form.get(name) == "y" for name in _SEARCH_OPTIONS)]
    return []


def _diff_view() -> str:
    """How Otterwiki's diff view (Page.diff, 2.26.1) lays this request's diff out: `?view`
    when it names a layout, else the one the session remembers, else inline."""
    from flask import session
    from otterwiki.wiki import DIFF_VIEWS

    for asked in (request.args.get("view"), session.get("diff_view")):
        if asked in DIFF_VIEWS:
            return asked
    return DIFF_VIEWS[0]


# The URL arguments of Otterwiki's views that name a revision.
_REVISION_ARGS = ("revision", "rev_a", "rev_b")


def _commit_named(tenant, revision) -> str:
    """The full id of the commit `revision` names in the wiki; `revision` itself if none."""
    try:
        return tenant.storage.repo.commit(str(revision)).hexsha
    except Exception:  # gitdb's BadName, ValueError ...: the view answers it (404)
        return str(revision)
