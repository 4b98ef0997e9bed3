"""The environment robot runs `git` in for one wiki's repository."""

from __future__ import annotations

import os
from pathlib import Path


def git_env(repo: Path) -> dict[str, str]:
    """The environment for `git` in repository (work tree) `repo`: no system or global config,
    and never a repository above it: a wiki folder that lost its .git is an error, not the
    checkout the data dir happens to sit in.

    HOME was once the work tree itself, so git read a pushed `.gitconfig` (or
    `.config/git/config`) as the user's config: `gpg.program` in one ran a pushed script on
    the server after the next write. GIT_CONFIG_GLOBAL names no file, so git reads neither;
    HOME is the wiki's folder (repo.parent), which no push writes to.
    """
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "HOME": str(repo.parent),
        "GIT_CEILING_DIRECTORIES": str(repo.parent),
    }
