"""Otterwiki's views whose cost grows with a wiki's history or size, held to the render budget.

Each of BOUNDED_VIEWS answers 503 past the budget, saying what to do instead (verdicts.py keeps
the verdict); the parts of other views that grew without bound (the sidebar's page tree, word
diffs, the editor's draft overview, commit metadata, the attachment list) are cut to bounds.
All of it is Otterwiki's own code wrapped from the outside (2.26.1), installed by
`install_bounded_views` (app.wiki.otterwiki.hooks).
"""

from __future__ import annotations

import time
from types import ModuleType
from types import SimpleNamespace

from app.wiki.otterwiki.budget import RenderOverBudget
from app.wiki.otterwiki.budget import SliceOver
from app.wiki.otterwiki.budget import budgeted
from app.wiki.otterwiki.budget import current_tenant
from app.wiki.otterwiki.budget import run_budgeted
from app.wiki.otterwiki.budget import within_slice
from app.wiki.otterwiki.render import note_outcome
from app.wiki.otterwiki.verdicts import TooLargeToShow
from app.wiki.otterwiki.verdicts import run_bounded

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
        if tenant is None or budgeted():
            return call()
        try:
            return run_budgeted(call, tenant.settings.render_budget)
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
    if budgeted():
        try:
            return within_slice(call, seconds)
        except SliceOver:
            return None
    try:
        return run_budgeted(call, seconds)
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
