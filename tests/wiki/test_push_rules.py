"""The pre-receive rules on their own: which paths (and links) a wiki refuses."""

from __future__ import annotations

import subprocess

import pytest

from app.wiki import push_rules
from app.wiki.git_http import install_hook
from app.wiki.push_rules import path_problem


@pytest.mark.parametrize("path", ["loop", "alias.md", "sub/evil", "dangling.md"])
def test_every_symlink_is_refused_and_the_reason_names_it(path):
    assert f"symlink {path!r}: a wiki holds no symbolic links" in push_rules.link_problem(path)


@pytest.mark.parametrize("path", [".git/config", "a/.GIT", "x/.gIt/hooks/pre-commit"])
def test_paths_with_a_dotgit_component_are_refused(path):
    assert path_problem(path)


@pytest.mark.parametrize(
    "path",
    ["caf\udce9.md", "a/\udcff.md", "new\nline.md", "nul\x00.md", "rtl\u202e.md", "zw\u200b.md"],
)
def test_paths_that_are_no_clean_utf8_text_are_refused(path):
    assert path_problem(path)


@pytest.mark.parametrize(
    "path", [".gitattributes", "notes/.gitattributes", ".gitmodules", "a/.GitModules"]
)
def test_files_git_reads_as_settings_are_refused(path):
    assert "holds no .gitattributes or .gitmodules" in path_problem(path)


@pytest.mark.parametrize(
    "path", ["home.md", "a.git/b.md", "Café/Ünïcode 日本.md", ".gitignore", "notes/.github/x.md"]
)
def test_other_paths_are_accepted(path):
    assert path_problem(path) is None


def test_the_hook_is_written_executable_whatever_the_deploy_kept(tmp_path):
    folder = install_hook(tmp_path / "hooks")
    (folder / "pre-receive").chmod(0o644)  # as a copy that dropped the mode would leave it
    hook = install_hook(folder) / "pre-receive"
    assert hook.stat().st_mode & 0o777 == 0o755
    assert str(push_rules.__file__) in hook.read_text()


def raw_commit(repo, headers: list[str], message: bytes) -> str:
    """Write a commit object of exactly these header lines and message (git's own checks
    aside, as a hostile pusher can); return its id."""
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    tree = (
        subprocess.run(["git", "mktree"], cwd=repo, input=b"", capture_output=True, check=True)
        .stdout.decode()
        .strip()
    )
    body = f"tree {tree}\n".encode() + "".join(f"{h}\n" for h in headers).encode()
    done = subprocess.run(
        ["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
        cwd=repo,
        input=body + b"\n" + message,
        capture_output=True,
        check=True,
    )
    return done.stdout.decode().strip()


ME = "Me <me@example.test> 1700000000 +0000"
VICTIM = "Victim <did.plc.victim@robot.example> 1700000000 +0000"


def test_a_second_author_line_is_refused(tmp_path, monkeypatch):
    """Ninth review: git log read the last author line, Otterwiki the first, so a commit with
    two named the pusher to this check and a victim's DID in history."""
    monkeypatch.chdir(tmp_path)
    sha = raw_commit(tmp_path, [f"author {VICTIM}", f"committer {ME}", f"author {ME}"], b"x\n")
    problems = push_rules.commit_problems(sha, "did:plc:me")
    assert any("2 author lines" in problem for problem in problems), problems


def test_a_message_in_another_encoding_is_refused(tmp_path, monkeypatch):
    """Ninth review: read as UTF-8, a trailer in IBM037 passed the check, and git log showed
    it re-encoded in history."""
    monkeypatch.chdir(tmp_path)
    message = "hello\n\nVia: evil (token)\nOn-Behalf-Of: victim.example did:plc:victim\n"
    headers = [f"author {ME}", f"committer {ME}", "encoding IBM037"]
    sha = raw_commit(tmp_path, headers, message.encode("cp037"))
    problems = push_rules.commit_problems(sha, "did:plc:me")
    assert any("is not UTF-8" in problem for problem in problems), problems


@pytest.mark.parametrize("encoding", [None, "UTF-8", "utf8"])
def test_a_plain_commit_passes(tmp_path, monkeypatch, encoding):
    monkeypatch.chdir(tmp_path)
    headers = [f"author {ME}", f"committer {ME}"] + ([f"encoding {encoding}"] if encoding else [])
    sha = raw_commit(tmp_path, headers, "a change, in UTF-8: é\n".encode())
    assert push_rules.commit_problems(sha, "did:plc:me") == []
