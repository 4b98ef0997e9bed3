"""The environment robot runs `git` in for one wiki's repository."""

from __future__ import annotations

import os
from pathlib import Path


def git_env(repo: Path) -> dict[str, str]:
    """The environment for `git` in repository (work tree) `repo`: no system or global config,
    paths read literally (LITERAL_PATHSPECS), and never a repository above it: a wiki folder
    that lost its .git is an error, not the checkout the data dir happens to sit in.

    HOME was once the work tree itself, so git read a pushed `.gitconfig` (or
    `.config/git/config`) as the user's config: `gpg.program` in one ran a pushed script on
    the server after the next write. GIT_CONFIG_GLOBAL names no file, so git reads neither;
    HOME is the wiki's folder (repo.parent), which no push writes to.
    """
    return {
        "PATH": safe_path(),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "HOME": str(repo.parent),
        "GIT_CEILING_DIRECTORIES": str(repo.parent),
        **NO_MAILMAP,
        **LITERAL_PATHSPECS,
    }


# git log applies a work tree's `.mailmap` by default (log.mailmap): one pushed into a wiki
# before the push rules refused it would rewrite who made every change in its history.
NO_MAILMAP = {
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "log.mailmap",
    "GIT_CONFIG_VALUE_0": "false",
}


# A page or attachment name is user data: `a*`, `[ab]` or `:(exclude)x` is that one file, never
# a glob or pathspec magic (`git log -- a*.md` listed the commits of `ab.md`; `:(exclude)x.md`
# had no history). Neither robot nor Otterwiki passes git a pattern on purpose, so every git the
# platform starts reads the paths it is given literally.
LITERAL_PATHSPECS = {"GIT_LITERAL_PATHSPECS": "1"}


def apply_to_process() -> None:
    """Put the rules every git of this process must follow (no mailmap, literal pathspecs) in
    its own environment, which GitPython's git runs and any child that gets no `env` of its own
    inherit: Otterwiki's `GitStorage` (log, blame, diff, add, rm, mv, ...) and robot's calls on
    the same repositories alike. A GIT_CONFIG_COUNT already set is left as it is (the mailmap
    entry would take its place). Returns None; raises nothing.
    """
    if "GIT_CONFIG_COUNT" not in os.environ:
        os.environ.update(NO_MAILMAP)
    os.environ.update(LITERAL_PATHSPECS)


def safe_path() -> str:
    """The service's PATH with only absolute folders: git and sh run in a wiki's work tree,
    where an empty or relative entry (".") would find a pushed file named `git` first."""
    folders = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    return os.pathsep.join(folder for folder in folders if os.path.isabs(folder)) or "/usr/bin:/bin"
