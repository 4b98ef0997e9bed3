"""git run for a wiki reads no config from the wiki's own files (app/core/git_env.py).

Seventh review: HOME was the work tree, so a pushed `.gitconfig` with `gpg.program` ran a
pushed script as the service's user after the next write (usage.measure's `git show`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from app.core import usage
from app.core.git_env import LITERAL_PATHSPECS
from app.core.git_env import NO_MAILMAP
from app.core.git_env import apply_to_process
from app.core.git_env import git_env

# Where git looks for a user's config, relative to HOME (and XDG_CONFIG_HOME's default).
USER_CONFIGS = [".gitconfig", ".config/git/config"]


def _git(repo: Path, *args: str, stdin: str | None = None) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "wiki" / "repo"
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    return path


@pytest.mark.parametrize("name", USER_CONFIGS)
def test_a_config_file_in_the_wiki_is_never_read(repo, name):
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text("[user]\n\tname = from-the-wiki\n[robot]\n\tplanted = yes\n")
    listed = subprocess.run(
        ["git", "config", "--list", "--show-origin"],
        cwd=repo,
        env=git_env(repo),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "from-the-wiki" not in listed and "robot.planted" not in listed


def test_a_pushed_gpg_program_never_runs(repo):
    """The reviewer's exploit, end to end through usage.measure."""
    marker = repo.parent / "ran"
    script = repo / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    script.chmod(0o755)
    (repo / ".gitconfig").write_text(
        "[log]\n\tshowSignature = true\n[gpg]\n\tprogram = ./evil.sh\n"
    )
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "c")
    # A signature header, so that showSignature asks gpg.program to check it.
    head, _, body = _git(repo, "cat-file", "commit", "HEAD").partition("\n\n")
    signature = "gpgsig -----BEGIN PGP SIGNATURE-----\n x\n -----END PGP SIGNATURE-----"
    signed = f"{head}\n{signature}\n\n{body}"
    sha = _git(repo, "hash-object", "-t", "commit", "-w", "--stdin", stdin=signed).strip()
    _git(repo, "update-ref", "HEAD", sha)
    # The same git run, with the wiki's config read as the user's, does run it: the test can fail.
    subprocess.run(
        ["git", "show", "-s", "--format=%ct", "HEAD"],
        cwd=repo,
        env={**git_env(repo), "HOME": str(repo), "GIT_CONFIG_GLOBAL": str(repo / ".gitconfig")},
        capture_output=True,
    )
    assert marker.exists()
    marker.unlink()
    usage.measure(repo)
    assert not marker.exists()


@pytest.mark.parametrize("path", [".:/usr/bin:/bin", "/usr/bin::/bin", "bin:/usr/bin:/bin"])
def test_git_never_runs_from_a_relative_or_empty_path_entry(monkeypatch, tmp_path, path):
    """Ninth review (hardening): git and sh run in a wiki's work tree; a PATH entry "." or ""
    there would find a pushed file named `git` first."""
    monkeypatch.setenv("PATH", path)
    assert git_env(tmp_path)["PATH"] == "/usr/bin:/bin"


@pytest.mark.parametrize("pattern", ["a*", "[ab]", ":(exclude)x", ":(glob)*", ":/ab", "*"])
def test_git_run_for_a_wiki_reads_a_path_as_that_file_alone(repo, pattern):
    """Reviewer's finding: a page name went to git as a pathspec, so `a*` named `ab` too."""
    for name in ("ab", "x", pattern):
        (repo / name).parent.mkdir(exist_ok=True)  # `:/ab` is file `ab` in folder `:`
        (repo / name).write_text(name)
        _git(repo, "--literal-pathspecs", "add", "--", name)
        _git(repo, "commit", "-q", "-m", f"add {name}")
    listed = subprocess.run(
        ["git", "log", "--format=%s", "--", pattern],
        cwd=repo,
        env=git_env(repo),
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.split("\n")[:-1] == [f"add {pattern}"]


def test_the_process_rule_makes_gitpython_read_paths_literally(repo, monkeypatch):
    """apply_to_process: Otterwiki's git runs (GitPython) inherit the process's environment."""
    import git

    for name in NO_MAILMAP | LITERAL_PATHSPECS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "environ", os.environ.copy())  # the rule's changes go with the test
    for name in ("ab", "a*"):
        (repo / name).write_text(name)
        _git(repo, "--literal-pathspecs", "add", "--", name)
        _git(repo, "commit", "-q", "-m", f"add {name}")
    apply_to_process()
    assert git.Repo(repo).git.log("--format=%s", "--", "a*") == "add a*"
    assert os.environ["GIT_CONFIG_KEY_0"] == "log.mailmap"
