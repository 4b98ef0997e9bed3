"""The pre-receive rules on their own: which paths (and links) a wiki refuses."""

from __future__ import annotations

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
