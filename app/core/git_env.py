"""The environment robot runs `git` in for one wiki's repository."""

from __future__ import annotations

import os
from pathlib import Path


def git_env(repo: Path) -> dict[str, str]:
    """The environment for `git` in repository (work tree) `repo`: no system or user config
    (HOME is the repo), and never a repository above it: a wiki folder that lost its .git is
    an error, not the checkout the data dir happens to sit in."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(repo),
        "GIT_CEILING_DIRECTORIES": str(repo.parent),
    }
