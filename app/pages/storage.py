"""Pages of one wiki over Otterwiki's GitStorage: read, write, rename, delete, history, files."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import git.exc
from otterwiki.gitstorage import GitStorage
from otterwiki.gitstorage import StorageError
from otterwiki.gitstorage import StorageErrorEncoding
from otterwiki.gitstorage import StorageNotFound
from otterwiki.gitstorage import StorageUnsafePath
from otterwiki.plugins import plugin_manager
from otterwiki.util import guess_mimetype

from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import NotFound
from app.core.errors import RobotError
from app.core.provenance import did_from_email
from app.core.provenance import read_message
from app.pages import last_commit_index
from app.pages.files import head_commit
from app.pages.files import refuse_links
from app.pages.files import remove_empty_folder
from app.pages.files import replace_file
from app.pages.link_map import LinkMap
from app.pages.links import move_page_text
from app.pages.links import rewrite_links
from app.pages.merge import MergeFailed
from app.pages.merge import diff
from app.pages.merge import merge
from app.pages.names import moved_files_problem
from app.pages.paths import PathRules
from app.pages.paths import clean_attachment_name
from app.pages.paths import clean_content
from app.pages.paths import clean_message
from app.pages.paths import clean_new_attachment_name
from app.pages.paths import clean_revision
from app.pages.paths import refuse_not_utf8
from app.pages.text import append_text

log = logging.getLogger(__name__)
# Attachment names may hold '*' or '[': git reads every path literally in the wiki service
# (app.core.git_env.LITERAL_PATHSPECS), but GitPython's own index.add expands globs in Python
# for a name not on disk, so files are staged with `git add`, never with index.add.

# Who made a change, for `Pages.changes(by=...)`: commits through an agent, or a person's own.
AUTHOR_KINDS = ("all", "agents", "people")
# A filtered list of changes reads at most this many commits to fill its limit.
MAX_CHANGES_SCAN = 5000


def same_blob(repo: git.Repo, filename: str, *revisions: str) -> bool:
    """Tell whether `filename` is the same blob at each of `revisions` in `repo` (False where
    it is missing from one). The page list's last commit of a file (app.pages.last_commit_index,
    by date, merges by their first parent) may be a side branch's whose file a merge did not
    keep: it stands for the file at HEAD only where this holds (review 43)."""
    try:
        blobs = repo.git.rev_parse(*(f"{revision}:{filename}" for revision in revisions))
    except git.exc.GitCommandError:
        return False
    return len(set(blobs.split())) == 1


@dataclass(frozen=True)
class Commit:
    """The last commit that touched a file; `author`, `email` and `message` only from
    `last_commit`."""

    revision: str
    author: str
    date: str
    email: str = ""
    message: str = ""


@dataclass
class Pages:
    """The pages of one wiki, as Otterwiki stores them in its git repository."""

    storage: GitStorage
    rules: PathRules = field(default_factory=PathRules)
    wikilink_style: str = ""
    # The wiki's kept map of links (Settings.link_map_path); None: pages are read each time.
    link_map: Path | None = None

    @classmethod
    def for_config(cls, storage: GitStorage, config, link_map: Path | None = None) -> Pages:
        """The pages of the wiki `storage` holds, named as its Otterwiki `config` (a mapping,
        the Flask app's config) says: RETAIN_PAGE_NAME_CASE and WIKILINK_STYLE; `link_map`
        as the field."""
        rules = PathRules(retain_case=bool(config.get("RETAIN_PAGE_NAME_CASE")))
        return cls(storage, rules, str(config.get("WIKILINK_STYLE") or ""), link_map)

    def links(self) -> dict[str, tuple[str, ...]]:
        """Map each page path at HEAD to the page paths it links to (LinkMap.outgoing; pages
        of one text share one tuple). Raises Unavailable while the map fills, PayloadTooLarge
        for a wiki of too many links."""
        return self._link_map().outgoing()

    def _link_map(self) -> LinkMap:
        return LinkMap(self.link_map, self.storage.repo, self.rules, self.wikilink_style)

    # -- reading -------------------------------------------------------------------------

    def page_files(self) -> list[str]:
        """Return every page file (.md) in the repository, sorted."""
        files, _ = self.storage.list()
        return [f for f in files if f.endswith(".md")]

    def is_page(self, filename: str) -> bool:
        """Tell whether `filename` is a file of this repository (not a folder or outside link)."""
        return self.storage.exists(filename) and not self.storage.isdir(filename)

    def last_commits(self, wanted: set[str] | None = None, under: str = "") -> dict[str, Commit]:
        """Map files to their last commit at HEAD (app.pages.last_commit_index).

        `wanted`: the files asked about (the walk of the log stops once each is found);
        None: every file ever committed. `under`: only files in this folder (git reads the
        changed-path Bloom filters of the commit-graph for it). On a very long history a file
        the walk did not reach in time is left out, until the index is built. Returns {} for
        a repository without commits.
        """
        if wanted is not None and not wanted:
            return {}
        try:
            head = self.storage.repo.head.commit.hexsha
        except ValueError:
            return {}  # no commit yet
        repo = Path(self.storage.path)
        found = last_commit_index.last_commits(repo, head, wanted, under)
        return {name: Commit(revision, "", date) for name, (revision, date) in found.items()}

    def last_commit(self, filename: str, revision: str = "HEAD") -> Commit | None:
        """Return the last commit touching `filename` at or before `revision`, or None.

        At HEAD the commit is found as last_commits() finds it (from the index of a long
        history, or a walk of the log for at most a few seconds), then read alone: `git log -1
        -- file` reads the history back to the file's last change, and a page untouched for
        77,000 commits cost 6.5 s of git's CPU on every read (review 42). That walk reads
        commits by date and merges by their first parent, so after a merge it may name a
        side branch's commit whose file the merge did not keep (review 43): its commit is taken
        only where the file is the file at HEAD (then it is as good a base for a write). Any
        other file is asked of git directly, under the read's CPU limit.
        """
        paths: tuple[str, ...] = ("--", filename)
        if revision == "HEAD":
            found = self.last_commits({filename}).get(filename)
            if found is not None and same_blob(self.storage.repo, filename, found.revision, "HEAD"):
                revision, paths = found.revision, ()
        try:
            # NUL between fields: no name or address can hold one (git refuses it in a
            # commit's header); the message, which may, comes last. \x02 once let an author
            # name shift the date.
            out = self.storage.repo.git.log(
                "-1", "--format=%H%x00%an%x00%aI%x00%ae%x00%B", revision, *paths
            )
        except git.exc.GitCommandError:
            return None
        return Commit(*out.split("\x00", 4)) if out else None

    def list(self, prefix: str = "", limit: int | None = None, after: str = "") -> list[dict]:
        """Return the pages whose path starts with `prefix`, in order of path, with size and
        last change: only those after the path `after`, and at most `limit` (None: all).
        Raises BadRequest for a prefix or `after` that is no string of at most 500 characters,
        or that was no valid UTF-8.
        """
        for name, value in (("prefix", prefix), ("after", after)):
            if not isinstance(value, str) or len(value) > 500:
                raise BadRequest(f"{name} must be a string of at most 500 characters")
            refuse_not_utf8(value, name)
        fold = (lambda s: s) if self.rules.retain_case else str.lower

        def order(path: str) -> tuple[str, str]:
            return fold(path), path  # `after` may be spelled in any case the wiki folds

        listed = sorted(
            ((self.rules.page_path(f), f) for f in self.page_files()), key=lambda p: order(p[0])
        )
        listed = [
            (path, f)
            for path, f in listed
            if fold(path).startswith(fold(prefix)) and (not after or order(path) > order(after))
        ]
        listed = listed if limit is None else listed[:limit]
        commits = self.last_commits({filename for _, filename in listed})
        pages = []
        for path, filename in listed:
            try:
                size = self.storage.size(filename)
            except (StorageUnsafePath, OSError):
                continue  # a symlink leading out of the repository is no page of this wiki
            commit = commits.get(filename)
            pages.append(
                {
                    "path": path,
                    "size": size,
                    "last_changed": commit.date if commit else None,
                }
            )
        return pages

    def read(self, path: str, revision: str | None = None) -> dict:
        """Return a page's content and the revision it was last changed in (now or at revision)."""
        path = self.rules.clean(path)
        filename = self.rules.filename(path)
        if revision is None:
            if not self.is_page(filename):
                raise NotFound(f"page {path!r} does not exist")
            commit = self.last_commit(filename)
            # Read the committed blob, not the file: another process may be rewriting the file
            # right now, and content must always match the revision a client will send back.
            if commit is None:
                content = self._load_text(filename)
            else:
                content = self._bytes_at(filename, commit.revision).decode("utf-8", "replace")
        else:
            revision = clean_revision(revision)
            filename = self._filename_at(filename, revision, path)
            content = self._bytes_at(filename, revision).decode("utf-8", "replace")
            commit = self.last_commit(filename, revision)
        return {
            "path": self.rules.page_path(filename),
            "content": content,
            "revision": commit.revision if commit else None,
            "last_changed": commit.date if commit else None,
            "author": commit.author if commit else None,
            **_provenance(commit),
        }

    def _load_text(self, filename: str) -> str:
        try:
            return self.storage.load(filename)
        except StorageErrorEncoding:
            raise BadRequest(f"{filename} is not UTF-8 text") from None
        except StorageNotFound:
            raise NotFound(f"{filename} does not exist") from None

    def _filename_at(self, filename: str, revision: str, path: str) -> str:
        """Return the name the page had at `revision` (it may have been renamed since)."""
        if self._exists_at(filename, revision):
            return filename
        if self.last_commit(filename) is not None:
            older = self.storage.get_filename_at_revision(filename, revision)
            if older != filename and self._exists_at(older, revision):
                return older
        raise NotFound(f"page {path!r} has no revision {revision}")

    def _exists_at(self, filename: str, revision: str) -> bool:
        try:
            self.storage.repo.git.cat_file("-e", f"{revision}:{filename}")
        except git.exc.GitCommandError:
            return False
        return True

    def _bytes_at(self, filename: str, revision: str) -> bytes:
        try:
            return self.storage.repo.git.show(
                f"{revision}:{filename}", stdout_as_string=False, strip_newline_in_stdout=False
            )
        except git.exc.GitCommandError:
            raise NotFound(f"{filename} does not exist at revision {revision}") from None

    def history(self, path: str, limit: int = 50) -> dict:
        """Return the commits that changed a page, newest first (following renames)."""
        path = self.rules.clean(path)
        filename = self.rules.filename(path)
        try:
            log = self.storage.log(filename, max_count=limit)
        except StorageNotFound:
            raise NotFound(f"page {path!r} has no history") from None
        return {"path": self.rules.page_path(filename), "revisions": [_entry(e) for e in log]}

    def changes(self, limit: int = 50, by: str | None = None) -> list[dict]:
        """Return the newest `limit` commits across the wiki with the pages and files they
        touched; `by` "agents" keeps those made through a token or OAuth grant, "people" the
        others ("all" or None: every commit). A filter reads up to MAX_CHANGES_SCAN commits
        (more when `limit` is larger) to fill `limit`. Raises BadRequest for another `by`.
        """
        by = by or "all"
        if by not in AUTHOR_KINDS:
            raise BadRequest(f"by must be one of {', '.join(AUTHOR_KINDS)}")
        wanted = (lambda entry: True) if by == "all" else _made_by(by == "agents")
        bound = limit if by == "all" else max(limit, MAX_CHANGES_SCAN)
        count, changes = limit, []
        while True:
            try:
                log = self.storage.log(max_count=count)
            except StorageNotFound:
                return []
            # Each pass reads the newest `count` again: four times as many each time, so the
            # repeats cost a third of the last pass at most.
            changes = [(raw, entry) for raw in log if wanted(entry := _entry(raw))][:limit]
            if len(changes) >= limit or len(log) < count or count >= bound:
                break
            count = min(count * 4, bound)
        return [{**entry, **self._touched(raw["files"])} for raw, entry in changes]

    def _touched(self, files: list[str]) -> dict:
        """The pages (paths) and files (repository names) one commit touched."""
        files = [f for f in files if f]
        pages = [self.rules.page_path(f) for f in files if f.endswith(".md")]
        return {"paths": pages, "files": files}

    # -- writing (the caller holds the wiki's write lock) ---------------------------------

    def write(self, path, content, author, message=None, base_revision=None) -> dict:
        """Create or replace a page in one commit, merging over changes made since `base_revision`.

        `path` is a page path, `content` its new Markdown, `author` a git (name, email) pair.
        Without `base_revision` the content replaces the page as it is. With it (the revision
        the writer read, a full or abbreviated commit sha), changes others made since are kept:
        when they do not overlap the writer's, the three-way merge of the two (`app.pages.merge`)
        is committed. Returns {path, revision, created, merged}; a merge adds `merged_over` (the
        revision merged over) and `merged_authors` (who changed the page since the base).

        Raises BadRequest / PayloadTooLarge for bad input, and Conflict (409, nothing written)
        when the changes overlap, the page was deleted, renamed or created since the base, or
        the base is no revision of this page: its extras carry `current_revision` and, for an
        overlap, `current_content` and `conflict` (see `_merge_over`).
        """
        path = self.rules.clean(path)
        content = clean_content(content)
        filename = self.rules.filename(path)
        exists = self.is_page(filename)
        commit = self.last_commit(filename) if exists else None
        current = commit.revision if commit else None
        merged = {"merged": False}
        if base_revision is not None:
            base = clean_revision(base_revision)
            content, merged = self._rebase(path, filename, base, content, current)
        verb = "Update" if exists else "Create"
        message = clean_message(message, f"{verb} {self.rules.page_path(filename)} via API")
        try:
            changed = self.storage.store(filename, content, message=message, author=author)
        except StorageUnsafePath:
            raise BadRequest(f"page path {path!r} resolves outside the wiki") from None
        if changed:
            current = self._head()
            plugin_manager.hook.page_saved(
                pagepath=path, content=content, author=author, message=message
            )
        return {
            "path": self.rules.page_path(filename),
            "revision": current,
            "created": not exists,
            **merged,
        }

    def append(self, path, addition, author, message=None) -> dict:
        """Add `addition` (Markdown) at the end of a page as a new paragraph, in one commit,
        creating the page when it does not exist.

        Read and written under the caller's write lock, so appends that race never conflict and
        none is lost. Returns what `write` returns. Raises BadRequest / PayloadTooLarge for bad
        input (the page with the addition must fit the page cap).
        """
        addition = clean_content(addition)
        if not addition.strip():
            raise BadRequest("content to append is empty")
        path = self.rules.clean(path)
        filename = self.rules.filename(path)
        current = self._load_text(filename) if self.is_page(filename) else ""
        return self.write(path, append_text(current, addition), author, message)

    def rebase(self, path: str, content: str, base_revision: str | None) -> dict:
        """Return the text to store for a page written on top of `base_revision`, and how.

        For a writer that stores the page its own way (the web editor). `base_revision` None or
        "" means the writer started a page that did not exist then. Returns {content, merged,
        current_revision} plus `merged_over` and `merged_authors` after a merge: `content` as
        given when the page is still at the base, else the clean merge. Raises as `write` does
        (a page created by someone else meanwhile is a Conflict too); writes nothing.
        """
        path = self.rules.clean(path)
        content = clean_content(content)
        filename = self.rules.filename(path)
        commit = self.last_commit(filename) if self.is_page(filename) else None
        current = commit.revision if commit else None
        base = clean_revision(base_revision) if base_revision else None
        content, merged = self._rebase(path, filename, base, content, current)
        return {"content": content, "current_revision": current, **merged}

    def _rebase(self, path, filename, base, content, current) -> tuple[str, dict]:
        """Return (text to store, merge facts) for `content` written on top of `base`."""
        if base is None:  # the writer began a new page
            if current is None:
                return content, {"merged": False}
            theirs = self._bytes_at(filename, current).decode("utf-8", "replace")
            if theirs == content:
                return content, {"merged": False}
            try:
                with_markers = merge("", content, theirs).text
            except MergeFailed:
                log.exception("merging two versions of the new page %s", path)
                with_markers = ""  # the conflict stands without this starting point
            raise self._conflict(
                f"page {path!r} was created by someone else while you wrote yours; nothing was "
                "written",
                current,
                content,
                theirs,
                with_markers,
            )
        if current is not None and current.startswith(base):
            return content, {"merged": False}
        return self._merge_over(path, filename, base, content, current)

    def _merge_over(self, path, filename, base, content, current) -> tuple[str, dict]:
        """Merge `content`, written on top of revision `base`, over the page at `current`.

        Returns (merged text, {merged, merged_over, merged_authors}); raises Conflict as `write`
        says, an overlap's extras being `current_revision`, `current_content` (the page now) and
        `conflict` = {base_revision, authors (who changed the page since), yours, diff (unified,
        current to yours), with_markers (the merge with git's conflict markers, a start for
        resolving it)}.
        """
        shown = self.rules.page_path(filename)
        base_full = self._commit_of(base)
        if base_full is None:
            raise Conflict(
                f"base_revision {base} is not a revision of this wiki; read {shown!r} again",
                current_revision=current,
            )
        if not self._exists_at(filename, base_full):
            if current is None:
                raise Conflict(f"page {path!r} does not exist", current_revision=None)
            raise Conflict(
                f"page {shown!r} did not exist at revision {base}: it was created or renamed "
                "here since; read it again",
                current_revision=current,
            )
        if current is None:
            raise Conflict(
                f"page {path!r} was deleted or renamed since revision {base}; nothing was written",
                current_revision=None,
                reason="deleted",
            )
        if self._is_ancestor(current, base_full):
            # The base is newer than the page's last change (another page changed since):
            # the page is as the writer read it, nothing to merge.
            return content, {"merged": False}
        old = self._bytes_at(filename, base_full).decode("utf-8", "replace")
        theirs = self._bytes_at(filename, current).decode("utf-8", "replace")
        authors = self.storage.repo.git.log(
            "--format=%an", f"{base_full}..{current}", "--", filename
        ).splitlines()
        authors = list(dict.fromkeys(authors))  # each once, newest first
        try:
            result = merge(old, content, theirs)
        except MergeFailed:
            log.exception("merging a write to %s over %s", shown, current)
            raise Conflict(
                f"page {shown!r} changed since revision {base} and could not be merged; read it "
                "again and retry",
                current_revision=current,
            ) from None
        if not result.clean:
            raise self._conflict(
                f"page {shown!r} changed since revision {base} in the same places as your "
                f"change ({result.conflicts} conflicting part(s)); nothing was written",
                current,
                content,
                theirs,
                result.text,
                base_full,
                authors,
            )
        return result.text, {"merged": True, "merged_over": current, "merged_authors": authors}

    @staticmethod
    def _conflict(message, current, yours, theirs, with_markers, base=None, authors=()):
        try:
            difference = diff(theirs, yours)
        except MergeFailed:
            log.exception("diffing a conflicting write")
            difference = ""
        details = {"base_revision": base, "authors": list(authors), "yours": yours}
        details["diff"] = difference
        return Conflict(
            message,
            current_revision=current,
            current_content=theirs,
            conflict={**details, "with_markers": with_markers},
        )

    def _commit_of(self, revision: str) -> str | None:
        """Return the full sha of the commit `revision` names, or None if there is none."""
        try:
            return self.storage.repo.git.rev_parse("--verify", "--quiet", f"{revision}^{{commit}}")
        except git.exc.GitCommandError:
            return None

    def delete(self, path: str, author, message=None) -> dict:
        """Delete a page (its attachments and subpages stay) in one commit."""
        path = self.rules.clean(path)
        filename = self.rules.filename(path)
        if not self.is_page(filename):
            raise NotFound(f"page {path!r} does not exist")
        shown = self.rules.page_path(filename)
        message = clean_message(message, f"Delete {shown} via API")
        self.storage.delete([filename], message=message, author=author)
        plugin_manager.hook.page_deleted(pagepath=path, author=author, message=message)
        return {"path": shown, "revision": self._head()}

    def rename(self, path, to, author, update_links=False, message=None) -> dict:
        """Move a page with its folder (attachments, subpages), maybe fixing links: one commit."""
        old, new = self.rules.clean(path), self.rules.clean(to)
        if not isinstance(update_links, bool):
            raise BadRequest("update_links must be true or false")
        old_file, new_file = self.rules.filename(old), self.rules.filename(new)
        old_dir, new_dir = self.rules.attachment_dir(old), self.rules.attachment_dir(new)
        if old_file == new_file:
            raise BadRequest(f"page {old!r} already has that name")
        if (new_dir + "/").startswith(old_dir + "/"):
            raise BadRequest("a page cannot be moved below itself")
        has_page = self.is_page(old_file)
        inside = self.storage.list(old_dir) if self.storage.isdir(old_dir) else ([], [])
        has_dir = bool(inside[0] or inside[1])
        if not has_page and not has_dir:
            raise NotFound(f"page {old!r} does not exist")
        if self.storage.exists(new_file) or (has_dir and self.storage.exists(new_dir)):
            raise Conflict(f"page {new!r} already exists")
        if has_dir and (problem := moved_files_problem(new_dir, inside[0])):
            raise BadRequest(problem)
        message = clean_message(
            message, f"Rename {self.rules.page_path(old_file)} to {new} via API"
        )
        linking = self._linking_to(old) if update_links else set()  # before any change
        touched, changed, updated = [old_file, new_file], [], []
        try:
            if has_dir:
                touched += [old_dir, new_dir]
                self.storage.rename(old_dir, new_dir, no_commit=True)
                changed.append(new_dir)
            if has_page:
                self.storage.rename(
                    old_file, new_file, no_commit=True, preserve_symlink_target=True
                )
                changed.append(new_file)
            if update_links:
                updated = list(self._rewrite_backlinks(old, new, linking))
                touched += updated
            self.storage.commit(changed + updated, message, author, no_add=True)
        except StorageError as error:
            self._roll_back(touched)
            raise Conflict(f"rename failed: {error}") from None
        except Exception:
            self._roll_back(touched)
            raise
        return {
            "path": self.rules.page_path(new_file),
            "from": self.rules.page_path(old_file),
            "revision": self._head(),
            "updated_pages": [self.rules.page_path(f) for f in updated],
        }

    def update_links_after_move(self, old: str, new: str) -> dict[str, str]:
        """Write every page whose links pointed at page `old` (its subpages, its files) with
        links to `new`, once the page (and its folder) are moved in the working tree but not
        yet committed; return {file: its new text}, for the caller to commit with the move.
        Only links change (app.pages.links.rewrite_links), never code; only the pages the link
        map names are read. Raises as `links` (Unavailable while the map fills)."""
        return self._rewrite_backlinks(old, new, self._linking_to(old))

    def _rewrite_backlinks(self, old: str, new: str, linking: set[str]) -> dict[str, str]:
        """Stage every page whose links pointed at `old` with links to `new`; return {file:
        new text}. `linking`: the files `_linking_to(old)` found (HEAD's, read from the link
        map, so before the move); the page and its subpages are found under their new names."""
        old_file, new_file = self.rules.filename(old), self.rules.filename(new)
        new_below = self.rules.attachment_dir(new) + "/"
        old_below = self.rules.attachment_dir(old) + "/"

        def before_move(filename: str) -> str:
            if filename == new_file:
                return old_file
            if filename.startswith(new_below):
                return old_below + filename[len(new_below) :]
            return filename

        updated = {}
        for filename in self.page_files():
            source = before_move(filename)
            if source not in linking:
                continue
            try:
                content = self.storage.load(filename)
            except StorageError:
                continue  # not text: nothing to rewrite
            if source == filename:
                rewritten = rewrite_links(
                    self.rules, filename[:-3], content, old, new, self.wikilink_style
                )
            else:  # a moved page: its relative links are read from where it was
                rewritten = move_page_text(
                    self.rules, source[:-3], filename[:-3], content, old, new, self.wikilink_style
                )
            if rewritten != content:
                replace_file(
                    self.storage.path, filename, rewritten.encode(), self.storage.repo.git_dir
                )
                updated[filename] = rewritten
        self._stage(list(updated))
        return updated

    def _stage(self, files: list[str]) -> None:
        """Stage `files` (paths in the work tree, read literally) with one `git add`: a
        rename that rewrote 2,500 linking pages ran `git add` and `git diff --cached` for each,
        35 ms a page against a large index, past the worker timeout (thirty-second review)."""
        if files:
            with _nul_joined(files) as names:
                self.storage.repo.git.add(
                    "--pathspec-from-file=-", "--pathspec-file-nul", istream=names
                )

    def _linking_to(self, old: str) -> set[str]:
        """The page files that link to page `old`, its subpages or its files, and those of the
        page and its subpages with relative links, as the link map says (LinkMap.read).
        Raises as `links`.

        A rename with update_links rewrote every page: on a wiki of 9,900 link-heavy pages it
        ran past the worker timeout, was killed, and could never succeed (twenty-fifth review).
        """
        old_file, old_dir = self.rules.filename(old), self.rules.attachment_dir(old)
        below = old_dir + "/"
        linking: dict[int, bool] = {}  # by PageLinks: pages of one text share one answer

        def links_below(links) -> bool:
            for target in links.pages:
                file = self.rules.filename(target)
                if file == old_file or file.startswith(below):
                    return True
            return any(f == old_dir or f.startswith(below) for f in links.folders)

        def moves(filename: str) -> bool:
            return filename == old_file or filename.startswith(below)

        found = set()
        for filename, links in self._link_map().read().items():
            if id(links) not in linking:
                linking[id(links)] = links_below(links)
            # and the moved pages whose relative links the move would leave pointing elsewhere
            if linking[id(links)] or (links.relative and moves(filename)):
                found.add(filename)
        return found

    def _roll_back(self, paths: list[str]) -> None:
        """Undo a half-done rename so the working tree and index match HEAD again."""
        try:
            self.storage.restore(paths)
        except StorageError:
            # the original error is the one to report; this one only goes to the log
            log.exception("rolling back a failed rename of %s", paths[0])

    def _head(self) -> str | None:
        return head_commit(self.storage.repo)

    def _is_ancestor(self, older: str, newer: str) -> bool:
        """Tell whether commit `older` is `newer` or one of its ancestors."""
        try:
            self.storage.repo.git.merge_base("--is-ancestor", older, newer)
        except git.exc.GitCommandError:
            return False
        return True

    # -- attachments ----------------------------------------------------------------------

    def attachments(self, path: str) -> list[dict]:
        """Return the files attached to a page (the non-page files in its folder)."""
        path = self.rules.clean(path)
        folder = self.rules.attachment_dir(path)
        if not self.storage.isdir(folder):
            if self.is_page(self.rules.filename(path)):
                return []
            raise NotFound(f"page {path!r} does not exist")
        files, _ = self.storage.list(folder, depth=0)
        commits = self.last_commits({f"{folder}/{name}" for name in files}, under=folder)
        found = []
        for name in files:
            relative = f"{folder}/{name}"
            if name.endswith(".md") or not self.is_page(relative):
                continue
            commit = commits.get(relative)
            found.append(
                {
                    "name": name,
                    "size": self.storage.size(relative),
                    "mime": guess_mimetype(name),
                    "last_changed": commit.date if commit else None,
                }
            )
        return found

    def attachment(self, path: str, name: str, revision: str | None = None) -> tuple[bytes, str]:
        """Return the bytes and MIME type of one attachment (now or at a revision)."""
        path = self.rules.clean(path)
        name = clean_attachment_name(name)
        relative = f"{self.rules.attachment_dir(path)}/{name}"
        if revision is not None:
            return self._bytes_at(relative, clean_revision(revision)), guess_mimetype(name)
        if not self.is_page(relative):
            raise NotFound(f"page {path!r} has no attachment {name!r}")
        try:
            data = self.storage.load(relative, mode="rb")
        except StorageNotFound:
            raise NotFound(f"page {path!r} has no attachment {name!r}") from None
        return data, guess_mimetype(name)

    def check_upload(self, path, name) -> tuple[str, str, str, str]:
        """Check, writing nothing, that `name` may be attached to page `path` now.

        Returns (clean path, clean name, the page's file, the attachment's file). Raises
        BadRequest (name), NotFound (no such page), Conflict (a collision in its folder).
        """
        path = self.rules.clean(path)
        name = clean_new_attachment_name(name)
        filename = self.rules.filename(path)
        if not self.is_page(filename):
            raise NotFound(f"page {path!r} does not exist; create it before attaching files")
        folder = self.rules.attachment_dir(path)
        if self.storage.exists(folder) and not self.storage.isdir(folder):
            raise Conflict(f"the file {folder!r} stands where page {path!r} keeps its attachments")
        self._refuse_collision(folder, name)
        return path, name, filename, f"{folder}/{name}"

    def upload_attachment(self, path, name, data: bytes, author, message=None) -> dict:
        """Add or replace one attachment of an existing page in one commit.

        `name` must pass clean_new_attachment_name and not collide (case-insensitively) with
        another file or folder next to it; the caller caps the size of `data`. Returns
        {"path", "name", "size" (bytes), "mime", "revision", "created"}; the same bytes again
        make no commit. Raises BadRequest (name, symlink), NotFound (no such page), Conflict
        (the commit failed; the working tree is as it was).
        """
        if not isinstance(data, bytes):
            raise BadRequest("attachment content must be bytes")
        path, name, filename, relative = self.check_upload(path, name)
        exists = self.is_page(relative)
        answer = {
            "path": self.rules.page_path(filename),
            "name": name,
            "size": len(data),
            "mime": guess_mimetype(name),
            "created": not exists,
        }
        if exists and self.storage.load(relative, mode="rb") == data:
            commit = self.last_commit(relative)
            return {**answer, "revision": commit.revision if commit else self._head()}
        verb = "Update" if exists else "Add"
        message = clean_message(message, f"{verb} attachment {name} of {answer['path']} via API")
        made_folder = replace_file(self.storage.path, relative, data, self.storage.repo.git_dir)
        try:
            self.storage.repo.git.add("--", relative)
            self.storage.commit([relative], message, author, no_add=True)
        except Exception as error:
            self._undo_upload(relative, exists, made_folder)
            if isinstance(error, StorageError | git.exc.GitError):
                raise Conflict(f"the attachment could not be committed: {error}") from None
            raise
        return {**answer, "revision": self._head()}

    def delete_attachment(self, path, name, author, message=None) -> dict:
        """Delete one attachment of a page in one commit; return {"path", "name", "revision"}.

        Raises BadRequest (name, a symlinked folder), NotFound (no such attachment).
        """
        path = self.rules.clean(path)
        name = clean_attachment_name(name)
        relative = f"{self.rules.attachment_dir(path)}/{name}"
        refuse_links(self.storage.path, relative, include_last=False)
        if relative not in self.storage.repo.git.ls_files("-z", "--", relative).split("\0"):
            raise NotFound(f"page {path!r} has no attachment {name!r}")
        shown = self.rules.page_path(self.rules.filename(path))
        message = clean_message(message, f"Delete attachment {name} of {shown} via API")
        self.storage.repo.git.rm("-q", "--", relative)
        try:
            self.storage.commit([relative], message, author, no_add=True)
        except Exception:
            self._roll_back([relative])
            raise
        return {"path": shown, "name": name, "revision": self._head()}

    def _refuse_collision(self, folder: str, name: str) -> None:
        """Refuse a name whose file would clash with a neighbour on a case-insensitive checkout,
        or block Otterwiki: a folder of that name, or a subpage whose folder it would take."""
        try:
            neighbours = os.listdir(os.path.join(self.storage.path, folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        folded = name.casefold()
        for entry in neighbours:
            if entry == name and not self.storage.isdir(f"{folder}/{entry}"):
                continue  # the file itself: replacing it is an update
            if entry.casefold() in (folded, folded + ".md"):
                raise Conflict(
                    f"attachment name {name!r} collides with {entry!r} in the same folder "
                    "(names differing only in case, or a subpage of that name)"
                )

    def _undo_upload(self, relative: str, existed: bool, made_folder: bool) -> None:
        """Put the working tree (then the index) back as HEAD has them after a failed commit.

        The file goes first and without the index: the index may be what failed (a stale lock).
        """
        target = os.path.join(self.storage.path, relative)
        try:
            if existed:
                old = self._bytes_at(relative, "HEAD")
                replace_file(self.storage.path, relative, old, self.storage.repo.git_dir)
                self.storage.repo.git.reset("-q", "--", relative)
            else:
                if os.path.lexists(target):  # put_back_at_head may have gone first
                    os.unlink(target)
                if made_folder:
                    remove_empty_folder(os.path.dirname(target))
                self.storage.repo.git.rm("--cached", "-q", "--ignore-unmatch", "--", relative)
        except (OSError, RobotError, git.exc.GitError):
            log.exception("rolling back a failed upload of %s", relative)


def _entry(entry: dict) -> dict:
    """One commit of Otterwiki's log as the API shows it: `via` names the agent (None for a
    person's own change), `did` the person (None when the commit does not say)."""
    found = read_message(entry["message"])
    return {
        "revision": entry["revision-full"],
        "author": entry["author_name"],
        "did": found.did or did_from_email(entry.get("author_email")),
        "via": found.agent.as_dict() if found.agent else None,
        "date": entry["datetime"].isoformat(),
        "message": found.message.strip(),
    }


def _made_by(agents: bool):
    return lambda entry: (entry["via"] is not None) == agents


def _provenance(commit: Commit | None) -> dict:
    """{"did", "via"} of a page's last commit, as history entries give them (both None when
    there is no commit); read from the one `git log` that found the commit."""
    if commit is None:
        return {"did": None, "via": None}
    found = read_message(commit.message)
    return {
        "did": found.did or did_from_email(commit.email),
        "via": found.agent.as_dict() if found.agent else None,
    }


def _nul_joined(names: list[str]):
    """`names` as a file of NUL-separated UTF-8 paths (git's --pathspec-file-nul), for stdin."""
    spool = tempfile.TemporaryFile()
    spool.write(b"\0".join(name.encode("utf-8") for name in names))
    spool.seek(0)
    return spool
