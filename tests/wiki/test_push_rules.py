"""The pre-receive rules on their own: which symlink targets and paths a wiki refuses."""

from __future__ import annotations

import pytest

from app.wiki import push_rules
from app.wiki.git_http import install_hook
from app.wiki.push_rules import link_problem
from app.wiki.push_rules import path_problem


@pytest.mark.parametrize(
    "target",
    ["/etc/passwd", "../x", "a/../../x", "a/..", ".git", "sub/.Git/config", "", "a\0b"],
)
def test_links_that_could_leave_the_repository_or_reach_git_are_refused(target):
    assert link_problem("page.md", target)


@pytest.mark.parametrize("target", ["home.md", "./home.md", "sub/page.md", ".", "a.git/x"])
def test_links_that_only_lead_down_are_accepted(target):
    # "." is fine: with no '..' anywhere, a link to the folder it is in still leads nowhere up.
    assert link_problem("page.md", target) is None


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
