"""Three-way merges of page text with git's own `merge-file`, and diffs with `git diff`.

A write made on top of an older revision of a page (its base) meets the page's current text:
`merge` replays both changes since the base, as `git merge-file` does for a file in a merge,
so two edits of different parts of a page both stay, and edits of the same lines are a
conflict the writer resolves instead of one silently replacing the other.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.core.git_env import git_env

# Labels on git's conflict markers: `<<<<<<< yours`, `>>>>>>> current`.
YOURS = "yours"
BASE = "base"
CURRENT = "current"
# Seconds git may take for one merge or diff. Three ordinary texts at the content cap (1 MiB)
# merge in well under a second, but three of random one-letter lines took merge-file 4.9 s of
# CPU and the conflict's diff more (review 48), each holding a worker and the wiki's write
# lock, and the timeout was twice the worker's own. Past it the write is a conflict that says
# the page could not be merged (nothing written).
GIT_TIMEOUT = 10


class MergeFailed(RuntimeError):
    """git could not merge or diff at all (not a conflict: a fault of this server)."""


@dataclass(frozen=True)
class Merge:
    """The outcome of a three-way merge.

    `text` is the merged text; when `conflicts` (the number of overlapping hunks) is not 0 it
    holds git's conflict markers around each of them, yours first, the current text second.
    """

    text: str
    conflicts: int

    @property
    def clean(self) -> bool:
        """True when the changes did not overlap and `text` is ready to store."""
        return self.conflicts == 0


def merge(base: str, yours: str, current: str) -> Merge:
    """Merge the changes from `base` to `yours` into `current` with `git merge-file -p`.

    All three are whole page texts. A change both sides made alike merges cleanly; lines both
    changed differently are one conflict each. Raises MergeFailed if git fails.
    """
    with tempfile.TemporaryDirectory(prefix="robot-merge-") as folder:
        names = _write(folder, {YOURS: yours, BASE: base, CURRENT: current})
        done = _git(
            folder,
            ["merge-file", "-p", "-L", YOURS, "-L", BASE, "-L", CURRENT, *names],
        )
    # merge-file exits with the number of conflicts (capped at 127), negative on an error.
    if not 0 <= done.returncode < 128:
        raise MergeFailed(f"git merge-file failed: {done.stderr.decode(errors='replace')[:300]}")
    return Merge(done.stdout.decode("utf-8", "replace"), done.returncode)


def diff(current: str, yours: str) -> str:
    """Return the unified diff (3 lines of context) from `current` to `yours`; "" if equal.

    The headers name the two sides `current` and `yours`. Raises MergeFailed if git fails.
    """
    with tempfile.TemporaryDirectory(prefix="robot-diff-") as folder:
        names = _write(folder, {CURRENT: current, YOURS: yours})
        done = _git(
            folder,
            ["diff", "--no-index", "--no-color", "--no-ext-diff", "--text", "-U3"]
            + ["--src-prefix=", "--dst-prefix=", *names],
        )
    if done.returncode not in (0, 1):  # 1: the files differ
        raise MergeFailed(f"git diff failed: {done.stderr.decode(errors='replace')[:300]}")
    lines = done.stdout.decode("utf-8", "replace").splitlines(keepends=True)
    # Drop git's `diff --git` and `index` lines: the `---`/`+++` headers say all there is.
    start = next((i for i, line in enumerate(lines) if line.startswith("--- ")), len(lines))
    return "".join(lines[start:])


def _write(folder: str, texts: dict[str, str]) -> list[str]:
    for name, text in texts.items():
        with open(os.path.join(folder, name), "wb") as file:
            file.write(text.encode("utf-8", "surrogatepass"))
    return list(texts)


def _git(folder: str, arguments: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            ["git", *arguments],
            cwd=folder,
            env=git_env(Path(folder)),  # no config of the machine or user changes its output
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise MergeFailed(f"git {arguments[0]} could not run: {error}") from None
