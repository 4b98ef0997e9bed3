"""A wiki's usage figures, measured from its git repository and recorded in robot.db.

Every write to a wiki ends here once: the wiki service after any request that moved HEAD (web
edits, page API, MCP tools through the page API, attachments), `create_wiki`, and `git push`
(app/wiki/git_http.py). Reads never measure; the dashboard and `robot wiki list` read the row.
The same end of each write extends the wiki's commit-graph, which keeps git's walks of a long
history fast (app/core/commit_graph.py).

The figures are those of HEAD, the wiki as readers see it now:
- pages: the number of `.md` files in HEAD's tree;
- size: the sum of the sizes in bytes of every file (blob) in HEAD's tree, pages and attachments
  alike. Not the repository on disk: that counts history and packing, moves after `git gc`, and
  is not what the wiki holds now;
- last change: HEAD's committer time, Unix seconds.
Measuring costs two `git` runs (`ls-tree -r -l`, `show -s`), a few milliseconds for a wiki of
thousands of files.
"""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from app.core import commit_graph
from app.core.git_env import git_env
from app.core.settings import Settings
from app.core.store import Store

log = logging.getLogger(__name__)

_GIT_TIMEOUT = 30.0  # seconds; a repo git cannot list in that time is broken, not big


@dataclass(frozen=True)
class Usage:
    """What a wiki holds at HEAD: `pages` .md files, `size_bytes` bytes of files, and
    `last_change_at` HEAD's commit time in Unix seconds (None for a repo with no commit)."""

    pages: int
    size_bytes: int
    last_change_at: int | None


class UsageError(Exception):
    """git could not read the repository (missing, corrupt, not a repo)."""


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", *args],
            input=stdin,
            cwd=repo,
            env=git_env(repo),
            capture_output=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(f"git {args[0]} in {repo}: {error}") from error
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"git {args[0]} in {repo}: {reason[0] if reason else done.returncode}")
    return done.stdout


def measure(repo: Path) -> Usage:
    """Measure the wiki whose git repository (work tree) is `repo`; see the module docstring.

    Raises UsageError when git cannot read it. A repository without any commit measures 0.
    """
    try:
        head = _git(repo, "show", "-s", "--format=%ct", "HEAD").strip()
    except UsageError:
        if _git(repo, "rev-parse", "--git-dir"):  # a repo, just no commit yet
            return Usage(0, 0, None)
        raise
    pages = size = 0
    # -z: names as they are (no quoting); each entry "<mode> <type> <object> <size>\t<path>".
    for entry in _git(repo, "ls-tree", "-r", "-l", "-z", "HEAD").split(b"\0"):
        if not entry:
            continue
        meta, _, path = entry.partition(b"\t")
        fields = meta.split()
        if len(fields) != 4 or fields[1] != b"blob":
            continue  # a submodule has no size of its own here
        size += int(fields[3])
        pages += path.endswith(b".md")
    return Usage(pages, size, int(head))


_OBJECT_ID = re.compile(r"[0-9a-fA-F]{4,64}")
_NO_OBJECT = re.compile(r"0+")


def revert_growth(repo: Path, revision: str) -> int:
    """Bytes a revert of commit `revision` would add to the files of the wiki at `repo`: what
    the files the commit deleted or changed held before it, less what they hold after it
    (negative when the revert frees room). 0 when `revision` is no object id of a commit git
    can read there: the revert itself then answers for it. Raises nothing.

    A revert brings an old commit's files back through a form of a few bytes; a push of a
    commit adding 60 MB of compressible data and one removing it, then a revert of the second,
    put 60 MB past a 5 MB cap.
    """
    if not _OBJECT_ID.fullmatch(revision):
        return 0
    try:
        raw = _git(repo, "diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", revision)
        # -z: each entry ":<old mode> <new mode> <old object> <new object> <status>\0<path>\0".
        tokens = raw.split(b"\0")
        before, after = [], []
        for meta in tokens[0::2]:
            fields = meta.split()
            if len(fields) == 5:
                before.append(fields[2])
                after.append(fields[3])
        wanted = [sha for sha in before + after if not _NO_OBJECT.fullmatch(sha.decode())]
        if not wanted:
            return 0
        # One line per object asked, in order: its size, or "<object> missing".
        lines = _git(
            repo, "cat-file", "--batch-check=%(objectsize)", stdin=b"\n".join(wanted) + b"\n"
        ).splitlines()
    except UsageError:
        return 0
    sizes = [int(line) if line.isdigit() else 0 for line in lines]
    by_object = dict(zip(wanted, sizes, strict=False))
    return sum(by_object.get(sha, 0) for sha in before) - sum(by_object.get(s, 0) for s in after)


def record(store: Store, slug: str, repo: Path) -> Usage:
    """Measure wiki `slug` from its repository `repo` and store the figures in its robot.db row;
    start extending its commit-graph (app.core.commit_graph), as every write ends here.

    Returns what was recorded. Raises UsageError (git) or the store's errors; callers that
    must not fail because of it (a write already done) catch and log.
    """
    usage = measure(repo)
    store.record_usage(slug, usage.pages, usage.size_bytes, usage.last_change_at)
    commit_graph.refresh(repo)
    return usage


def record_unmeasured(settings: Settings, store: Store) -> list[str]:
    """Measure every wiki never measured (`last_change_at` NULL: made before schema 0004).

    Run by `robot init`, so an upgraded instance shows real figures before any write. Returns
    the slugs recorded; a wiki whose repository is missing or unreadable is skipped (logged) and
    tried again at the next init.
    """
    recorded = []
    for wiki in store.list_wikis():
        if wiki.last_change_at is not None:
            continue
        repo = settings.repo_path(wiki.slug)
        try:
            if not repo.is_dir():
                raise UsageError(f"{repo} is missing")
            record(store, wiki.slug, repo)
        except UsageError:
            log.warning("could not measure wiki %s", wiki.slug, exc_info=True)
            continue
        recorded.append(wiki.slug)
    return recorded
