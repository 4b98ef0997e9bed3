"""Each file's last commit, kept on disk from one HEAD to the next for very long histories.

Listing pages (and a page's attachments) dates each file by its last commit, from one walk of
`git log` back from HEAD that stops once every file asked about is found. A file untouched
since early in a long history makes it read nearly all of it: 47 s on a wiki of a million
commits, past the worker timeout. Here:

- `walk` reads the log for at most a deadline and says whether it reached the end.
- A walk that read the whole log of INDEX_MIN_COMMITS or more commits saves what it found as
  the index, INDEX in the repository's .git: `{"head": <commit>, "files": {<name>: [<commit>,
  <author>, <ISO date>]}}`, every file ever committed up to `head`, with its last commit.
- With an index whose `head` is HEAD, or an ancestor of it (a wiki's history only grows: no
  force pushes), only the commits after `head` are read, and the index moves to HEAD.
- A walk that runs out of time answers what it found (the files it did not reach go undated)
  and starts `build` detached (app.core.detached), which writes the index from the whole log;
  the next listing is answered from it.

Small histories never get an index: their walk takes milliseconds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.core.detached import start_module
from app.core.git_env import git_env

INDEX = ".git/robot-last-commits.json"
LOCK = ".git/robot-last-commits.lock"
# Commits a whole-log walk must have read for its result to be kept: below this git reads the
# whole log in well under a second, and keeping an index would cost each write a rewrite.
INDEX_MIN_COMMITS = 5000
# Seconds a request's walk may read the log before it answers what it found.
WALK_SECONDS = 3.0
# (commit, ISO 8601 author date)
Entry = tuple[str, str]
# One record per commit: \x01, its id and date (fixed shapes: nothing a committer chose; an
# author name once carried \x02 and \x01, and broke or forged every page list), then its files,
# NUL-separated (a push may bring no control character in a file name, app.wiki.push_rules).
_LOG = ("log", "--format=%x01%H %aI", "-z", "--name-only", "--diff-merges=first-parent")
_HEADER = re.compile(r"[0-9a-f]{40,64} \S+")
_CHUNK = 64 * 1024


def walk(
    repo: Path,
    revisions: str = "HEAD",
    under: str = "",
    missing: set[str] | None = None,
    deadline: float | None = None,
) -> tuple[dict[str, Entry], bool, int]:
    """Read `git log` of `revisions` (a revision or range) in the work tree `repo`, newest
    first, for each file's newest commit (merges by their first-parent diff).

    `under`: only files in this folder; `missing`: the files wanted (taken out as found; the
    walk stops once none is left; None: all); `deadline`: time.monotonic() seconds after
    which it stops. Returns (files found, whether the log was read to its end, commits read).
    A repository without commits, or an unknown revision, reads as an empty, unfinished log.
    """
    command = ["git", *_LOG, revisions, "--", *([under] if under else [])]
    env = git_env(repo)  # literal pathspecs: a folder named `*` is no glob
    found: dict[str, Entry] = {}
    process = subprocess.Popen(
        command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    commits, ended = 0, False
    try:
        # The unfinished record's chunks are joined once it ends: adding each chunk to it
        # and splitting the whole again was quadratic in a record's size (a commit naming
        # 100,000 files, review 54).
        pending: list[bytes] = []
        while chunk := process.stdout.read(_CHUNK):
            *ended_here, rest = chunk.split(b"\x01")
            if ended_here:
                records = [b"".join([*pending, ended_here[0]]), *ended_here[1:]]
                pending = []
                commits += _note(records, found, missing)
            pending.append(rest)
            if (missing is not None and not missing) or (
                deadline is not None and time.monotonic() > deadline
            ):
                return found, False, commits
        commits += _note([b"".join(pending)], found, missing)
        ended = True
    finally:
        process.kill()  # done early, or already ended: either way, reap it
        process.wait()
        process.stdout.close()
    return found, ended and process.returncode == 0, commits


def _note(records: list[bytes], found: dict[str, Entry], missing: set[str] | None) -> int:
    """Add to `found` the files of `git log` records not in it yet, taking each from
    `missing`, and stop at the record that leaves `missing` empty; return how many commits
    were read."""
    commits = 0
    for record in records:
        header, _, names = record.decode("utf-8", "surrogateescape").partition("\x00")
        if not header:
            continue
        if not _HEADER.fullmatch(header):
            continue  # not git's: never taken as a commit
        commits += 1
        entry = tuple(header.split(" "))
        for name in names.split("\x00"):
            name = name.lstrip("\n")
            if name and name not in found:
                found[name] = entry
                if missing is not None:
                    missing.discard(name)
        if missing is not None and not missing:
            break
    return commits


def last_commits(
    repo: Path, head: str, wanted: set[str] | None = None, under: str = ""
) -> dict[str, Entry]:
    """Map the files `wanted` (None: all ever committed), in folder `under` if given, to
    their last commit at `head` (HEAD's commit) in the work tree `repo`.

    From the index, when there is one for `head` or an ancestor; else from a walk of at most
    WALK_SECONDS, which keeps its result as the index when it read a long history whole, and
    starts `build` when it ran out of time (the files it did not reach are left out).
    """
    files = _indexed(repo, head)
    if files is not None:
        return _select(files, wanted, under)
    deadline = time.monotonic() + WALK_SECONDS
    missing = None if wanted is None else set(wanted)
    found, ended, commits = walk(repo, head, under, missing, deadline)
    if ended and not under and commits >= INDEX_MIN_COMMITS:
        _save(repo, head, found)
    elif not ended and (missing is None or missing):
        start_build(repo)
    return found


def indexed(repo: Path, head: str) -> dict[str, Entry] | None:
    """Every file's last commit at `head` (HEAD's commit) from the index alone, moved forward
    as last_commits() moves it; None without an index that fits. Never walks the whole log:
    a page view asks it once per HEAD (app.wiki.otterwiki.storage.LastCommits) for the files
    it shows."""
    return _indexed(repo, head)


def _select(files: dict[str, Entry], wanted: set[str] | None, under: str) -> dict[str, Entry]:
    if wanted is not None:
        return {name: files[name] for name in wanted if name in files}
    if under:
        prefix = under.rstrip("/") + "/"
        return {name: entry for name, entry in files.items() if name.startswith(prefix)}
    return dict(files)


def _indexed(repo: Path, head: str) -> dict[str, Entry] | None:
    """The index's files at `head`, moved forward from an ancestor first (and saved); None
    without an index that fits (none, unreadable, or of another history). When the commits
    since it cannot all be read in WALK_SECONDS, what was read goes over the index unsaved,
    and a build is started."""
    index = _load(repo)
    if index is None:
        return None
    indexed_head, files = index
    if indexed_head == head:
        return files
    if not _is_ancestor(repo, indexed_head, head):
        return None  # a history replaced (an import): walk it as new
    deadline = time.monotonic() + WALK_SECONDS
    newer, ended, _ = walk(repo, f"{indexed_head}..{head}", deadline=deadline)
    files.update(newer)
    if ended:
        _save(repo, head, files)
    else:  # answered from the index and what was read (a file changed in the rest of the
        start_build(repo)  # new commits shows its older date until the build is done)
    return files


def _is_ancestor(repo: Path, older: str, newer: str) -> bool:
    done = subprocess.run(
        ["git", "merge-base", "--is-ancestor", older, newer],
        cwd=repo,
        env=git_env(repo),
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _load(repo: Path) -> tuple[str, dict[str, Entry]] | None:
    """The index (head, files), or None if there is none or it cannot be read."""
    try:
        data = json.loads((repo / INDEX).read_bytes())
        head, files = data["head"], data["files"]
        if not isinstance(head, str) or not isinstance(files, dict):
            return None
        loaded = {name: tuple(entry) for name, entry in files.items()}
        if not all(_HEADER.fullmatch(" ".join(entry)) for entry in loaded.values()):
            return None  # not what _save writes
        return head, loaded
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save(repo: Path, head: str, files: dict[str, Entry]) -> None:
    """Replace the index in one rename, so a reader sees the old one or the new, whole; a
    failure to write only leaves the index as it was."""
    target = repo / INDEX
    try:
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".robot-last-commits-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as file:
            json.dump({"head": head, "files": files}, file, separators=(",", ":"))
        os.replace(temporary, target)
    except (OSError, ValueError):
        Path(temporary).unlink(missing_ok=True)


def start_build(repo: Path) -> bool:
    """Start `build` for the work tree `repo`, detached (app.core.detached.start_module);
    return whether it was started."""
    module = "app.pages.last_commit_index"
    return start_module(repo, LOCK, module, str(repo.resolve()), env=git_env(repo))


def build(repo: Path) -> None:
    """Write the index of the work tree `repo` at its HEAD from the whole log (or from an
    older index, read forward), however long it takes."""
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "HEAD"],
        cwd=repo,
        env=git_env(repo),
        capture_output=True,
        text=True,
        check=False,
    )
    head = done.stdout.strip()
    if done.returncode != 0 or not head:
        return
    index = _load(repo)
    if index is not None and _is_ancestor(repo, index[0], head):
        files = index[1]
        newer, ended, _ = walk(repo, f"{index[0]}..{head}")
        files.update(newer)
    else:
        files, ended, _ = walk(repo, head)
    if ended:
        _save(repo, head, files)


if __name__ == "__main__":
    build(Path(sys.argv[1]))
