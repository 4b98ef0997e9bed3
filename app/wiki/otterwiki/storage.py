"""Speed-ups of Otterwiki's one `GitStorage` for the wiki it currently points at.

Both answer for the active wiki only (its repo is the storage's) and leave anything else to
Otterwiki's own methods, so a request that needs no wiki, or a storage pointed elsewhere, sees
Otterwiki unchanged.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.locks import put_back_at_head
from app.pages import last_commit_index
from app.pages.storage import same_blob

if TYPE_CHECKING:
    from app.wiki.otterwiki.tenancy import OpenWiki

_COMMIT_ID = re.compile(rb"[0-9a-f]{40}|[0-9a-f]{64}")
# Per open wiki, the last commits remembered for one HEAD (about 2 KB each); past this many
# files, start over.
LAST_COMMITS_PER_WIKI = 256
# Files of a wiki's last-commit index each worker keeps per open wiki (about 320 bytes each:
# 6.4 MB at this many, review 46); a larger index is read per HEAD and not kept.
LAST_COMMITS_INDEX_FILES = 20_000


def head_commit(repo_path: str) -> str | None:
    """Return the commit HEAD points to, read from the ref files; None if that is not plain.

    Two small file reads: GitPython's own resolution costs several times more, which would eat
    much of what remembering last commits saves. None (no commit yet, a `.git` file instead of a
    folder, anything unexpected) leaves the question to git.
    """
    git_dir = os.path.join(repo_path, ".git")
    try:
        with open(os.path.join(git_dir, "HEAD"), "rb") as file:
            sha = file.read().strip()  # a detached HEAD names its commit
        if sha.startswith(b"ref: "):
            ref = sha[5:]
            try:
                with open(os.path.join(git_dir, os.fsdecode(ref)), "rb") as file:
                    sha = file.read().strip()
            except FileNotFoundError:
                with open(os.path.join(git_dir, "packed-refs"), "rb") as file:
                    packed = (line.rstrip(b"\n").partition(b" ") for line in file)
                    sha = next((sha for sha, _, name in packed if name == ref), b"")
    except OSError:
        return None
    return sha.decode("ascii") if _COMMIT_ID.fullmatch(sha) else None


def resolve_under(root: str, filename: str) -> str:
    """Return `os.path.realpath(os.path.join(root, filename))` for a `root` already resolved.

    Walks only the components of `filename`, not the root's again: Otterwiki resolves a path for
    every file it touches, a few dozen times per page view. Anything unusual (an absolute name,
    `..`, a symlink on the way) is left to `os.path.realpath` itself.
    """
    if os.path.isabs(filename):
        return os.path.realpath(filename)
    path = root
    for part in filename.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return os.path.realpath(os.path.join(root, filename))
        path = f"{path}/{part}"
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return os.path.realpath(os.path.join(root, filename))
        except OSError:
            pass  # a missing name stays as written, as realpath keeps it
    return path


@dataclass
class LastCommits:
    """One wiki's memory of the last commit that changed each file, as of one HEAD."""

    repo: object  # the wiki's git.Repo
    head: str | None = None
    commits: dict = field(default_factory=dict)  # filename -> its last commit as of head
    # The index of a long history at `index_head` ({} without one), read once per HEAD: each
    # read parses it whole, 45 ms for 20,000 files, and a page asks for each attachment
    # (review 45).
    index_head: str | None = None
    index: dict = field(default_factory=dict)

    def _indexed(self, head: str) -> dict:
        if self.index_head != head:
            repo = Path(self.repo.working_tree_dir)
            index = last_commit_index.indexed(repo, head) or {}
            # Past LAST_COMMITS_INDEX_FILES kept in each worker, files are asked of git.
            self.index_head = head
            self.index = index if len(index) <= LAST_COMMITS_INDEX_FILES else {}
        return self.index

    def of(self, filename: str, head: str):
        """Return the last commit that changed `filename` as of `head` (a git.Commit).

        Otterwiki asks this on every page view and runs `git rev-list` for it. The answer depends
        only on the commit HEAD points to, so it holds until any process commits to this wiki.
        Raises Otterwiki's `StorageNotFound` if no commit changed `filename`, as it does.
        """
        from git.exc import GitCommandError
        from otterwiki.gitstorage import StorageNotFound

        if head != self.head or len(self.commits) >= LAST_COMMITS_PER_WIKI:
            self.head, self.commits = head, {}
        if filename not in self.commits:
            # From the index of a long history where it has the file as it is at `head`:
            # git rev-list reads the history back to the file's last change (6.8 s of git's
            # CPU for a page untouched for 77,000 commits, review 42). Else walk from `head`,
            # not from HEAD again (it may have moved since), under the read's CPU limit.
            entry = self._indexed(head).get(filename)
            try:
                if entry is not None and same_blob(self.repo, filename, entry[0], head):
                    self.commits[filename] = self.repo.commit(entry[0])
                else:
                    found = self.repo.iter_commits(head, paths=filename, max_count=1)
                    self.commits[filename] = next(iter(found), None)
            except (ValueError, GitCommandError):
                raise StorageNotFound from None
        commit = self.commits[filename]
        if commit is None:
            raise StorageNotFound
        return commit


def remember_last_commits(storage, active: Callable[[], OpenWiki | None]) -> None:
    """Answer `storage`'s last-commit-at-HEAD questions from the active wiki's `LastCommits`.

    `storage` is Otterwiki's `GitStorage`; `active()` returns the wiki it points at, or None.
    """
    # Page views and the sitemap ask the storage for a file's last commit at HEAD; answer
    # from the open wiki's memory (revisions other than HEAD still go to git every time).
    original = type(storage)._get_commit

    def _get_commit(filename, revision):
        opened = active()
        if revision is not None or opened is None or storage.repo is not opened.repo:
            return original(storage, filename, revision)
        head = head_commit(opened.repo_path)
        if head is None:
            return original(storage, filename, revision)
        return opened.last_commits.of(filename, head)

    storage._get_commit = _get_commit


def resolve_from_known_roots(storage, active: Callable[[], OpenWiki | None]) -> None:
    """Check `storage`'s paths from the active wiki's repository path, resolved once at open.

    `storage` is Otterwiki's `GitStorage`; `active()` returns the wiki it points at, or None.
    The patched `_abspath` raises `StorageUnsafePath` as Otterwiki's own does, and for a name
    holding a NUL character too (for any wiki, active or not).
    """
    # Otterwiki checks every path it touches against symlinks leading out of the repository
    # or into .git, resolving the repository's own path again each time. The same check,
    # from the open wiki's repository path resolved once.
    from otterwiki.gitstorage import StorageUnsafePath

    original = type(storage)._abspath

    def _abspath(filename):
        if "\x00" in filename:
            # No file has a NUL in its name; the OS refuses one with ValueError, which was a
            # 500 wherever a name came from a stored preference (twenty-fifth review). As an
            # unsafe path it is "not there" to `exists` and a 400 to a read or write.
            raise StorageUnsafePath(f"{filename!r} contains a NUL character.")
        opened = active()
        if opened is None or storage.path != opened.repo_path:
            return original(storage, filename)
        root = opened.real_repo_path
        resolved = resolve_under(root, filename)
        gitdir = os.path.join(root, ".git")
        if os.path.commonpath([gitdir, resolved]) == gitdir or (
            not storage.allow_external_symlinks and os.path.commonpath([root, resolved]) != root
        ):
            raise StorageUnsafePath(f"{filename} resolves to a path outside the repository.")
        return os.path.join(storage.path, filename)

    storage._abspath = _abspath


# GitStorage's methods that change the repository: each stages and commits in steps.
_WRITES = ("store", "commit", "delete", "rename", "revert")


def undo_failed_writes(storage) -> None:
    """Put `storage`'s repository back at HEAD (app.core.locks.put_back_at_head) when one of
    its writes fails part-way, Otterwiki's editor's and the page API's alike; the error goes
    on as before. `storage` is Otterwiki's `GitStorage`. Writes run under the wiki's write
    lock, so nobody else's change is in flight.
    """
    for name in _WRITES:
        method = getattr(type(storage), name).__get__(storage)  # Otterwiki's: installed once

        def undoing(*args, _method=method, **kwargs):
            try:
                return _method(*args, **kwargs)
            except BaseException:
                put_back_at_head(Path(storage.repo.working_dir))
                raise

        setattr(storage, name, undoing)


def stage_with_git(storage) -> None:
    """Make `storage`'s `update` (write a file, stage it; True if it changed) stage with `git
    add` and compare with `git diff --cached`, by the file's name taken literally.

    `storage` is Otterwiki's `GitStorage`. Otterwiki's own (2.26.1) asks GitPython's
    `index.diff`, whose parser (3.1) splits git's output at each NUL followed by ':': for a
    page whose name starts with ':' (`:/top`, `:(exclude)x`) it raised in its reader thread,
    logged as an error, and answered a half-read list, right about a change only by chance
    (while `:/top` was still a pathspec, a change read as none and was left uncommitted on
    disk, the write answering success). Its `index.add` also expands a missing name's '*' or
    '[' in Python. Raises what Otterwiki's raises (StorageUnsafePath, OSError) and
    GitPython's GitCommandError.
    """
    original = type(storage).update.__get__(storage)

    def update(filename, content, mode="w"):
        abspath = storage._abspath(filename)  # first: refuses a path out of the repository
        dirname = os.path.dirname(filename)
        if dirname:
            os.makedirs(os.path.join(storage.path, dirname), mode=0o775, exist_ok=True)
        with open(abspath, mode) as file:
            file.write(content)
        storage.repo.git.add("--", filename)
        # Named in the list: the staged file differs from HEAD's (or HEAD has none).
        return bool(storage.repo.git.diff("--cached", "--name-only", "-z", "--", filename))

    update.__wrapped__ = original
    storage.update = update
