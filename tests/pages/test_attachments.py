"""Writing attachments with app.pages over a real git repository: rules, commits, no leftovers."""

import subprocess

import pytest

from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import NotFound
from tests.pages.conftest import ALICE

BINARY = bytes(range(256)) * 4

# Names an attachment must never get, each with why (the test id).
HOSTILE_NAMES = {
    "empty": "",
    "dot": ".",
    "dotdot": "..",
    "slash": "a/b",
    "traversal": "../../etc/passwd",
    "backslash": "a\\b",
    "nul": "a\x00b",
    "newline": "a\nb",
    "tab": "a\tb",
    "escape": "a\x1b[31m",
    "delete-char": "a\x7f",
    "bidi-override": "evil\u202etxt.exe",
    "zero-width": "a\u200bb",
    "lone-surrogate": "a\ud800",
    "private-use": "a\ue000",
    "replacement-char": "a\ufffd.txt",
    "leading-dot": ".htaccess",
    "dot-git": ".git",
    "gitmodules": ".gitmodules",
    "page": "notes.md",
    "page-upper": "NOTES.MD",
    "too-long": "a" * 201,
    "too-long-utf8": "é" * 101,
    "trailing-dot": "file.txt.",
    "trailing-space": "file.txt ",
    "leading-space": " file.txt",
    "not-nfkc": "ﬁle.txt",
    "not-a-string": 7,
}


def git(repo, *args) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(autouse=True)
def doc(pages):
    pages.write("Doc", "# Doc\n", ALICE)


def test_upload_commits_once_and_reads_back(pages, repo):
    result = pages.upload_attachment("Doc", "data.bin", BINARY, ALICE, "add data")
    assert result == {
        "path": "Doc",
        "name": "data.bin",
        "size": len(BINARY),
        "mime": "application/octet-stream",
        "created": True,
        "revision": git(repo, "rev-parse", "HEAD").strip(),
    }
    assert (repo / "doc" / "data.bin").read_bytes() == BINARY
    assert pages.attachment("doc", "data.bin")[0] == BINARY
    assert git(repo, "log", "-1", "--format=%s%n%an") == "add data\nalice.test\n"
    assert git(repo, "status", "--porcelain") == ""


def test_replace_is_an_update_and_same_bytes_make_no_commit(pages, repo):
    first = pages.upload_attachment("Doc", "a.txt", b"one", ALICE)
    second = pages.upload_attachment("doc", "a.txt", b"two", ALICE)
    again = pages.upload_attachment("doc", "a.txt", b"two", ALICE)
    assert second["created"] is False and second["revision"] != first["revision"]
    assert again["revision"] == second["revision"]
    assert git(repo, "log", "-1", "--format=%s") == "Update attachment a.txt of Doc via API\n"
    assert len(git(repo, "log", "--format=%H").split()) == 4  # Home, Doc, two uploads


def test_delete_removes_file_in_one_commit(pages, repo):
    pages.upload_attachment("Doc", "a.txt", b"one", ALICE)
    result = pages.delete_attachment("Doc", "a.txt", ALICE, "gone")
    assert (
        result["name"] == "a.txt" and result["revision"] == git(repo, "rev-parse", "HEAD").strip()
    )
    assert not (repo / "doc" / "a.txt").exists() and pages.attachments("Doc") == []
    with pytest.raises(NotFound):
        pages.delete_attachment("Doc", "a.txt", ALICE)


def test_glob_characters_are_literal(pages, repo):
    pages.upload_attachment("Doc", "a1", b"keep", ALICE)
    pages.upload_attachment("Doc", "a[0-9]", b"star", ALICE)
    pages.delete_attachment("Doc", "a[0-9]", ALICE)
    assert (repo / "doc" / "a1").read_bytes() == b"keep"
    assert git(repo, "ls-files") == "doc.md\ndoc/a1\nhome.md\n"


def test_upload_needs_an_existing_page(pages, repo):
    with pytest.raises(NotFound, match="create it"):
        pages.upload_attachment("Nowhere", "a.txt", b"x", ALICE)
    assert not (repo / "nowhere").exists()


@pytest.mark.parametrize("name", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_hostile_names_are_refused_and_nothing_is_written(pages, repo, name):
    before = git(repo, "rev-parse", "HEAD")
    with pytest.raises(BadRequest):
        pages.upload_attachment("Doc", name, b"x", ALICE)
    assert git(repo, "rev-parse", "HEAD") == before
    assert git(repo, "status", "--porcelain", "--untracked-files=all", "--ignored") == ""


@pytest.mark.parametrize("name", ["Photo.png", "SUB", "sub", "Notes"])
def test_case_collisions_are_refused(pages, repo, name):
    pages.upload_attachment("Doc", "photo.png", b"x", ALICE)
    pages.write("Doc/Sub/Deep", "x", ALICE)  # makes the folder doc/sub
    pages.write("Doc/Notes", "x", ALICE)  # doc/notes.md: its folder would be doc/notes
    with pytest.raises(Conflict, match="collides"):
        pages.upload_attachment("Doc", name, b"y", ALICE)
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_file_where_the_folder_belongs_is_a_conflict(pages, repo):
    pages.upload_attachment("Doc", "sub", b"a file named like a subpage", ALICE)
    pages.write("Doc/Sub", "x", ALICE)  # its attachments would go to doc/sub: a file
    with pytest.raises(Conflict, match="stands where"):
        pages.upload_attachment("Doc/Sub", "a.txt", b"x", ALICE)
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_symlinks_are_never_written_through(pages, repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "doc").mkdir()
    (repo / "doc" / "link.txt").symlink_to(repo / "doc.md")
    pages.write("Other", "x", ALICE)
    (repo / "other").symlink_to(outside)
    with pytest.raises(BadRequest, match="symbolic link"):
        pages.upload_attachment("Doc", "link.txt", b"overwrite", ALICE)
    with pytest.raises(BadRequest, match="symbolic link"):
        pages.upload_attachment("Other", "x.txt", b"escape", ALICE)
    assert (repo / "doc.md").read_text() == "# Doc\n" and list(outside.iterdir()) == []


@pytest.mark.parametrize("name", ["new.txt", "old.txt"])
def test_failed_commit_leaves_nothing(pages, repo, name):
    pages.upload_attachment("Doc", "old.txt", b"old", ALICE)
    before = git(repo, "rev-parse", "HEAD")
    (repo / ".git" / "index.lock").touch()  # another git process holds the index
    with pytest.raises(Conflict, match="could not be committed"):
        pages.upload_attachment("Doc", name, b"new", ALICE)
    (repo / ".git" / "index.lock").unlink()
    assert git(repo, "rev-parse", "HEAD") == before
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert sorted(p.name for p in (repo / "doc").iterdir()) == ["old.txt"]
