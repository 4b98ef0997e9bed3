"""git's commit-graph with changed-path Bloom filters, kept up to date after every write.

A page view asks git for the last commit of one file, history and blame walk commits for one
path, and the changelog counts commits. Without help, git reads every commit object and diffs
every tree on the way: 15 s for a file last changed a million commits ago, here. git's own index
for this, the commit-graph (git-commit-graph(1), "--changed-paths"), answers "did this commit
touch this path?" from a Bloom filter and reads commits from one mmapped file: the same walk took
2.8 s, and `rev-list --count` 0.9 s instead of 4.7 s. git uses the file whenever it is there.

Only a repository of MIN_COMMITS or more gets one: below that, git walks the whole history in
milliseconds, and every git run would read the graph's files for nothing.

`refresh` runs after every write (app.core.usage.record, the one place each write ends); a
long history from before this module gets its graph at its next write. Nothing runs at start-up:
one step per wiki there would start thousands of processes at once. With
`--split` git appends a small layer holding only the new commits (a few milliseconds) and merges
layers now and then; the first write of a wiki with a long history (a big push) costs seconds
per hundred thousand commits, so git runs apart from the request, at the lowest priority, and
the request never waits for it. One step runs per repository at a time (flock on LOCK): a write
while one runs starts none, and the next write adds what it missed.
"""

from __future__ import annotations

from pathlib import Path

from app.core.detached import start_detached
from app.core.git_env import git_env

# git-commit-graph(1): every commit reachable from a ref, Bloom filters of changed paths, and
# a new layer instead of rewriting the whole file.
COMMAND = (
    *("git", "commit-graph", "write"),
    *("--reachable", "--changed-paths", "--split", "--no-progress"),
)
# Commits a repository needs before it gets a graph. Below this git walks the whole history in
# milliseconds, and reading the graph's files in every git run cost more than it saved: the
# bench's round-robin over 100 small wikis fell from 1.13 to 0.76 of plain Otterwiki.
MIN_COMMITS = 5000
# The shell step that runs its command only in a repository that long: sh -c _IF_LONG sh
# MIN_COMMITS command...
_IF_LONG = 'min=$1; shift; test "$(git rev-list --count --all)" -ge "$min" && exec "$@"'
# flock(1) -n on this file in the repository's .git: one step at a time per repository, the
# others give up at once (git takes its own lock only once it has computed the whole graph,
# so concurrent writers each did all the work first).
LOCK = ".git/robot-commit-graph.lock"


def refresh(repo: Path) -> bool:
    """Start extending the commit-graph of the git repository (work tree) `repo` with the
    commits it lacks, if it holds MIN_COMMITS or more, detached (app.core.detached), and
    return at once: True if the step was started, False if it could not be (logged; reads are
    only slower until a later write)."""
    command = ("sh", "-c", _IF_LONG, "sh", str(MIN_COMMITS), *COMMAND)
    return start_detached(repo, LOCK, command, git_env(repo))
