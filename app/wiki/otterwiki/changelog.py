"""Otterwiki's changelog and its feeds read one page of the log, not the whole history.

Otterwiki's `Changelog.get` parses `git log --name-only` of every commit, and `render` then
picks a page of 100 from that list; the RSS and Atom feeds list every commit ever made. On a wiki
with a million commits one changelog view took longer than the worker timeout (the worker was
killed, a bare 500). Here:

- the page numbers come from `git rev-list HEAD` alone (commit ids only, no diffs: under a
  second for a million commits with the commit-graph, app.core.commit_graph);
- only the page shown is read with `git log --name-only` (`--skip`, `--max-count`);
- the feeds carry the newest FEED_ENTRIES commits, as feeds usually do;
- the RSS feed's item titles and descriptions (file names, commit messages) are HTML-escaped:
  RSS readers take both as HTML, so a commit message `<img onerror=...>` was live markup there
  (Atom's are typed text already).

Links stay Otterwiki's: `/-/changelog/<revision>` names the first commit of a page by the
6-character id Otterwiki shows; a revision that is not in HEAD's log answers 404.
"""

from __future__ import annotations

import html
import re
from types import ModuleType

from app.core.errors import NotFound

# Commits per changelog page, as Otterwiki's Changelog.commit_count.
PAGE_SIZE = 100
# Commits in the RSS and Atom feeds.
FEED_ENTRIES = 100
# Page links shown around the current one (Otterwiki's page_span and max_pages).
PAGE_SPAN = 4
MAX_PAGE_LINKS = 8
# How `git log --name-only -z` separates entries (Otterwiki's GitStorage.log splits so too).
_ENTRY_END = re.compile(r"\x00\x00|\n\x00")


def page_links(revisions: list[str], active: int) -> tuple[list[dict], dict]:
    """The page links of a changelog whose pages start at `revisions` (short ids, newest page
    first), page `active` (0-based) shown: (links, ends). Links are Otterwiki's template dicts
    {"i", "revision", "active", "dummy"}; at most MAX_PAGE_LINKS, a window around the active
    page, with a {"dummy": True} gap at a cut end. `ends` holds first_page, last_page,
    previous_page and next_page (None where there is none)."""
    links = [
        {"i": n + 1, "revision": revision, "active": n == active, "dummy": False}
        for n, revision in enumerate(revisions)
    ]
    ends = {
        "first_page": revisions[0] if revisions else None,
        "last_page": revisions[-1] if revisions else None,
        "previous_page": revisions[active - 1] if active > 0 else None,
        "next_page": revisions[active + 1] if active + 1 < len(revisions) else None,
    }
    if len(links) <= MAX_PAGE_LINKS:
        return links, ends
    # A window of MAX_PAGE_LINKS pages, the active one PAGE_SPAN from its left end where it can.
    start = min(max(active - PAGE_SPAN, 0), len(links) - MAX_PAGE_LINKS)
    window = links[start : start + MAX_PAGE_LINKS]
    if start > 0:
        window[0] = {"dummy": True}
    if start + MAX_PAGE_LINKS < len(links):
        window[-1] = {"dummy": True}
    return window, ends


def install_paged_changelog(server: ModuleType) -> None:
    """Replace `otterwiki.wiki.Changelog`'s get and render (`server` is `otterwiki.server`,
    booted) with ones that read one page of the log; see the module docstring."""
    from flask import abort
    from flask import redirect
    from flask import render_template
    from flask import request
    from flask import url_for
    from git.exc import GitCommandError
    from otterwiki import wiki
    from otterwiki.auth import current_user
    from otterwiki.auth import has_permission
    from otterwiki.gitstorage import StorageNotFound
    from otterwiki.sidebar import SidebarMenu
    from otterwiki.sidebar import SidebarPageIndex

    storage = server.storage

    def read_log(skip: int, count: int) -> list[dict]:
        """Otterwiki's log entries of `count` commits of HEAD's log after the first `skip`."""
        try:
            raw = storage.repo.git.log("--name-only", "-z", f"--skip={skip}", f"-n{count}")
        except GitCommandError as error:  # a repository without commits
            raise StorageNotFound(str(error)) from None
        return [storage._get_metadata_of_log(e) for e in _ENTRY_END.split(raw.strip("\x00")) if e]

    def get(self, _external: bool = False, skip: int = 0, count: int = FEED_ENTRIES):
        """`count` entries of the changelog from the `skip`th, each file with its name, URL and
        mimetype as Otterwiki's templates and feeds want them."""
        try:
            entries = read_log(skip, count)
        except StorageNotFound:
            return []
        for entry in entries:
            files = {}
            for name in entry["files"]:
                shown, url = wiki.auto_url(name, entry["revision"], _external=_external)
                files[name] = {"name": shown, "url": url, "mimetype": wiki.guess_mimetype(name)}
            entry["files"] = files
        return entries

    def render(self):
        if not has_permission("READ"):
            if not current_user.is_authenticated:
                return redirect(url_for("login", next=request.full_path))
            abort(403)
        try:
            commits = storage.repo.git.rev_list("HEAD").split()
        except GitCommandError:  # no commit yet
            commits = []
        start = 0
        if self.commit_start is not None:
            wanted = self.commit_start.lower()
            start = next((n for n, sha in enumerate(commits) if sha.startswith(wanted)), -1)
            if start < 0:
                raise NotFound(f"commit {self.commit_start} is not in this wiki's changelog")
        starts = [sha[:6] for sha in commits[::PAGE_SIZE]]
        links, ends = page_links(starts, start // PAGE_SIZE)  # the page holding start
        # Previous and next from the first commit shown, which an old link (the log has grown
        # since) may have put between page starts: no commit is skipped or shown twice.
        ends["previous_page"] = commits[max(start - PAGE_SIZE, 0)][:6] if start > 0 else None
        after = start + PAGE_SIZE
        ends["next_page"] = commits[after][:6] if after < len(commits) else None
        return render_template(
            "changelog.html",
            log=self.get(skip=start, count=PAGE_SIZE),
            title="Changelog",
            pages=links,
            **ends,
            menutree=SidebarPageIndex("/").query(),
            custom_menu=SidebarMenu().query(),
        )

    original_rss = wiki.Changelog.feed_rss

    def feed_rss(self):
        make = self.get_feedgenerator

        def escaped():
            feed = make()
            for item in feed.entry():
                item.title(html.escape(item.title() or ""))
                item.description(html.escape(item.description() or ""))
            return feed

        self.get_feedgenerator = escaped
        return original_rss(self)

    wiki.Changelog.get = get
    wiki.Changelog.render = render
    wiki.Changelog.feed_rss = feed_rss
