"""Writing one file of a wiki's working tree so that it is whole or absent, never written through
a symbolic link (git lets anyone who can push put a link into the tree); reading which commit
HEAD names, and the page files of a commit with their text. Putting the tree back at HEAD after
a failed write is app.core.locks.put_back_at_head."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from git.refs.symbolic import SymbolicReference

from app.core.errors import BadRequest
from app.pages.paths import MAX_CONTENT_BYTES

# git's modes of a file with content of its own (not a symlink, not a submodule)
REGULAR_FILE_MODES = ("100644", "100755")


def refuse_links(root: str, relative: str, include_last: bool = True) -> None:
    """Raise BadRequest if any existing component of `relative` below `root` is a symlink.

    `relative` is a repository path with '/' separators; with `include_last` False the file
    itself may be a link (deleting a link removes the link, not what it points at).
    """
    parts = relative.split("/")
    checked = parts if include_last else parts[:-1]
    current = Path(root)
    for part in checked:
        current = current / part
        if current.is_symlink():
            shown = "/".join(parts[: len(current.relative_to(root).parts)])
            raise BadRequest(f"{shown} is a symbolic link in the repository; it is never written")


def replace_file(root: str, relative: str, data: bytes, scratch: str) -> bool:
    """Write `data` to `root/relative` atomically; return whether its folder had to be made.

    The bytes go to a temporary file in `scratch` (a folder on the same file system that no
    listing shows, e.g. the repository's .git) and are renamed over the target in one step, so a
    reader sees the old file or the new one, and a failure leaves no partial file. Refuses
    symlinks on the way (BadRequest, see refuse_links).
    """
    refuse_links(root, relative)
    target = Path(root, relative)
    made_folder = not target.parent.exists()
    target.parent.mkdir(mode=0o775, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix="robot-upload-", dir=scratch)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o664)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        if made_folder:
            remove_empty_folder(target.parent)
        raise
    return made_folder


def remove_empty_folder(folder: str | Path) -> None:
    """Remove `folder` if it exists and is empty; leave it otherwise."""
    try:
        os.rmdir(folder)
    except OSError:
        pass  # not empty, or already gone: either way nothing of ours is left in it


def head_commit(repo) -> str | None:
    """The full id (40 hex digits) of the commit `repo`'s (a git.Repo) HEAD names now, or None
    in a repository without commits. Read from the ref files, loose or packed (GitPython's
    `SymbolicReference.dereference_recursive`): no git process runs, not even the object
    database's `cat-file`, as HEAD is asked on every write, push and search."""
    try:
        return SymbolicReference.dereference_recursive(repo, "HEAD")
    except ValueError:  # HEAD names a branch with no commit yet
        return None


def page_file_name(name: bytes) -> str | None:
    """A page's file name from git's bytes; None for other files and names not UTF-8 (a push
    may bring them; Otterwiki cannot serve them, and one must not break the wiki)."""
    if not name.endswith(b".md"):
        return None
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        return None


def page_blobs(repo, commit: str = "HEAD") -> Iterator[tuple[str, str, str]]:
    """Yield (file name, mode, blob id) of every page file (`.md`) in `commit`'s tree, read
    from the tree alone (one `git ls-tree`, no page read). Raises git.exc.GitCommandError for
    a commit that does not exist (HEAD in a repository without commits)."""
    listing = repo.git.execute(
        ["git", "ls-tree", "-r", "-z", "--full-tree", commit], stdout_as_string=False
    )
    for entry in listing.split(b"\0"):
        info, _, name = entry.partition(b"\t")
        filename = page_file_name(name)
        if filename is not None and info:
            mode, kind, sha = info.decode("ascii").split()
            if kind == "blob":
                yield filename, mode, sha


def page_text(repo, mode: str, sha: str) -> str | None:
    """The text of a page blob `sha` (git mode `mode`) of `repo` (a git.Repo): None for a
    symlink or submodule, or bytes that are not UTF-8 (Otterwiki's search skips them too);
    "" for a page over MAX_CONTENT_BYTES, which only a push makes and which is never read
    whole."""
    if mode not in REGULAR_FILE_MODES:
        return None
    _, _, size = repo.git.get_object_header(sha)
    if size > MAX_CONTENT_BYTES:
        return ""
    try:
        return repo.git.get_object_data(sha)[3].decode("utf-8")
    except UnicodeDecodeError:
        return None
