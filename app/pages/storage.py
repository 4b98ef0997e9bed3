"""Pages of one wiki over Otterwiki's GitStorage: read, write, rename, delete, history, files."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from dataclasses import field

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
from app.core.provenance import did_from_email
from app.core.provenance import read_message
from app.pages.links import rewrite_links
from app.pages.paths import PathRules
from app.pages.paths import clean_attachment_name
from app.pages.paths import clean_content
from app.pages.paths import clean_message
from app.pages.paths import clean_revision

log = logging.getLogger(__name__)

# Who made a change, for `Pages.changes(by=...)`: commits through an agent, or a person's own.
AUTHOR_KINDS = ("all", "agents", "people")
# A filtered list of changes reads at most this many commits to fill its limit.
MAX_CHANGES_SCAN = 5000


@dataclass(frozen=True)
class Commit:
    """The last commit that touched a file."""

    revision: str
    author: str
    date: str


@dataclass
class Pages:
    """The pages of one wiki, as Otterwiki stores them in its git repository."""

    storage: GitStorage
    rules: PathRules = field(default_factory=PathRules)
    wikilink_style: str = ""

    # -- reading -------------------------------------------------------------------------

    def page_files(self) -> list[str]:
        """Return every page file (.md) in the repository, sorted."""
        files, _ = self.storage.list()
        return [f for f in files if f.endswith(".md")]

    def is_page(self, filename: str) -> bool:
        """Tell whether `filename` is a file of this repository (not a folder or outside link)."""
        return self.storage.exists(filename) and not self.storage.isdir(filename)

    def last_commits(self) -> dict[str, Commit]:
        """Map each file ever committed to its last commit, from one pass over the log."""
        try:
            raw = self.storage.repo.git.log("--format=%x01%H%x02%an%x02%aI", "-z", "--name-only")
        except git.exc.GitCommandError:
            return {}  # a repository without commits
        found: dict[str, Commit] = {}
        for chunk in raw.split("\x01"):
            header, _, names = chunk.partition("\x00")
            if not header:
                continue
            sha, author, date = header.split("\x02")
            for name in names.split("\x00"):
                name = name.lstrip("\n")
                if name and name not in found:
                    found[name] = Commit(sha, author, date)
        return found

    def last_commit(self, filename: str, revision: str = "HEAD") -> Commit | None:
        """Return the last commit touching `filename` at or before `revision`, or None."""
        try:
            out = self.storage.repo.git.log(
                "-1", "--format=%H%x02%an%x02%aI", revision, "--", filename
            )
        except git.exc.GitCommandError:
            return None
        return Commit(*out.split("\x02")) if out else None

    def list(self, prefix: str = "") -> list[dict]:
        """Return every page whose path starts with `prefix`, with size and last change."""
        if not isinstance(prefix, str) or len(prefix) > 500:
            raise BadRequest("prefix must be a string of at most 500 characters")
        fold = (lambda s: s) if self.rules.retain_case else str.lower
        commits = self.last_commits()
        pages = []
        for filename in self.page_files():
            path = self.rules.page_path(filename)
            if not fold(path).startswith(fold(prefix)):
                continue
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
        """Create or replace a page in one commit; refuse when `base_revision` is stale."""
        path = self.rules.clean(path)
        content = clean_content(content)
        filename = self.rules.filename(path)
        exists = self.is_page(filename)
        commit = self.last_commit(filename) if exists else None
        current = commit.revision if commit else None
        if base_revision is not None:
            base = clean_revision(base_revision)
            if current is None:
                raise Conflict(
                    f"page {path!r} does not exist, so base_revision {base} is stale",
                    current_revision=None,
                )
            if not current.startswith(base):
                raise Conflict(
                    f"page {path!r} changed since revision {base}; read it again and retry",
                    current_revision=current,
                )
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
        return {"path": self.rules.page_path(filename), "revision": current, "created": not exists}

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
        message = clean_message(
            message, f"Rename {self.rules.page_path(old_file)} to {new} via API"
        )
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
                updated = self._rewrite_backlinks(old, new)
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

    def _rewrite_backlinks(self, old: str, new: str) -> list[str]:
        """Stage every page whose links pointed at `old` with links to `new`; return their files."""
        updated = []
        for filename in self.page_files():
            try:
                content = self.storage.load(filename)
            except StorageError:
                continue  # not text: nothing to rewrite
            rewritten = rewrite_links(
                self.rules, filename[:-3], content, old, new, self.wikilink_style
            )
            if rewritten != content:
                self.storage.update(filename, rewritten)
                updated.append(filename)
        return updated

    def _roll_back(self, paths: list[str]) -> None:
        """Undo a half-done rename so the working tree and index match HEAD again."""
        try:
            self.storage.restore(paths)
        except StorageError:
            # the original error is the one to report; this one only goes to the log
            log.exception("rolling back a failed rename of %s", paths[0])

    def _head(self) -> str:
        return self.storage.repo.head.commit.hexsha

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
        commits = self.last_commits()
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
