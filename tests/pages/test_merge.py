"""Three-way merges of page text (git merge-file) and writes over a newer revision."""

import random
import subprocess

import pytest
from otterwiki.gitstorage import GitStorage

from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.pages import merge as merge_module
from app.pages.merge import MergeFailed
from app.pages.merge import diff
from app.pages.merge import merge
from app.pages.paths import MAX_CONTENT_BYTES
from app.pages.storage import Pages

ALICE = ("alice.test", "did.plc.alice@localhost")
AGENT = ("agent.test", "did.plc.agent@localhost")
BASE = "# Plan\n\nintro\n\n## One\n\nfirst\n\n## Two\n\nsecond\n"


@pytest.fixture
def pages(tmp_path):
    return Pages(GitStorage(str(tmp_path / "repo"), initialize=True))


def commits(pages) -> list[str]:
    out = subprocess.run(
        ["git", "log", "--format=%H"], cwd=pages.storage.path, capture_output=True, text=True
    )
    return out.stdout.split()


# -- the merge itself ------------------------------------------------------------------------


def test_changes_in_different_places_merge_cleanly():
    yours = BASE.replace("first", "first, edited in the browser")
    current = BASE.replace("second", "second, edited by the agent")
    result = merge(BASE, yours, current)
    assert result.clean and result.conflicts == 0
    assert "edited in the browser" in result.text and "edited by the agent" in result.text


def test_changes_to_the_same_lines_conflict_with_markers():
    result = merge(BASE, BASE.replace("first", "mine"), BASE.replace("first", "theirs"))
    assert not result.clean and result.conflicts == 1
    assert "<<<<<<< yours\nmine\n=======\ntheirs\n>>>>>>> current\n" in result.text


def test_the_same_change_on_both_sides_is_clean():
    same = BASE.replace("first", "agreed")
    result = merge(BASE, same, same)
    assert result.clean and result.text == same


def test_a_missing_newline_at_the_end_survives_a_clean_merge():
    base = "a\nb\nc"
    result = merge(base, "A\nb\nc", "a\nb\nC")
    assert result.clean and result.text == "A\nb\nC"


def test_only_a_newline_added_at_the_end_against_an_edit_of_that_line_conflicts():
    result = merge("a\nb", "a\nB", "a\nb\n")
    assert not result.clean


def test_whitespace_only_changes_are_changes():
    result = merge("a\nb\n", "a \nb\n", "a\t\nb\n")
    assert not result.clean


def test_unicode_text_merges_byte_exact():
    base = "Grüße\n\n你好\n\nemoji 🦦\n"
    result = merge(base, base.replace("Grüße", "Grüße, Welt"), base.replace("🦦", "🦦🐙"))
    assert result.clean and result.text == "Grüße, Welt\n\n你好\n\nemoji 🦦🐙\n"


def test_lines_looking_like_conflict_markers_are_just_text():
    hostile = "<<<<<<< yours\nx\n=======\ny\n>>>>>>> current\n"
    base = hostile + "tail\n"
    result = merge(base, base.replace("tail", "TAIL"), "head\n" + base)
    assert result.clean and result.text == "head\n" + hostile + "TAIL\n"
    overlap = merge(base, base.replace("y\n", "mine\n"), base.replace("y\n", "theirs\n"))
    assert overlap.conflicts == 1


def test_huge_pages_within_the_cap_merge():
    line = "a line of a long page, some words to fill it up\n"
    lines = [f"{i} {line}" for i in range(MAX_CONTENT_BYTES // (len(line) + 8))]
    base = "".join(lines)
    yours = "".join(["TOP\n", *lines])
    current = "".join([*lines[:-1], "BOTTOM\n"])
    result = merge(base, yours, current)
    assert result.clean and result.text.startswith("TOP\n") and result.text.endswith("BOTTOM\n")


def test_diff_is_unified_from_current_to_yours():
    assert diff("a\nb\n", "a\nc\n") == "--- current\n+++ yours\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
    assert diff("same\n", "same\n") == ""


# -- Pages.write over a newer revision ----------------------------------------------------------


def test_stale_write_not_overlapping_is_merged_and_committed(pages):
    base = pages.write("Plan", BASE, ALICE)["revision"]
    theirs = pages.write("Plan", BASE.replace("second", "agent's"), AGENT)["revision"]
    result = pages.write("Plan", BASE.replace("first", "mine"), ALICE, base_revision=base)
    assert result["merged"] is True and result["merged_over"] == theirs
    assert result["merged_authors"] == ["agent.test"]
    assert result["revision"] == commits(pages)[0] != theirs
    content = pages.read("Plan")["content"]
    assert "mine" in content and "agent's" in content


def test_a_write_at_the_current_revision_is_not_a_merge(pages):
    base = pages.write("Plan", BASE, ALICE)["revision"]
    result = pages.write("Plan", "new\n", ALICE, base_revision=base[:7])
    assert result["merged"] is False and pages.read("Plan")["content"] == "new\n"


def test_a_base_newer_than_the_pages_last_change_is_not_a_merge(pages):
    # The reviewer's example: P1 written, then Q1; P1 written with Q1's revision as its base.
    pages.write("P1", "one\n", ALICE)
    newer = pages.write("Q1", "other page\n", AGENT)["revision"]
    result = pages.write("P1", "two\n", ALICE, base_revision=newer)
    assert result["merged"] is False and "merged_authors" not in result
    assert pages.read("P1")["content"] == "two\n"


def test_overlapping_stale_write_conflicts_with_details_and_writes_nothing(pages):
    base = pages.write("Plan", BASE, ALICE)["revision"]
    theirs_text = BASE.replace("first", "agent's")
    theirs = pages.write("Plan", theirs_text, AGENT)["revision"]
    mine = BASE.replace("first", "mine")
    with pytest.raises(Conflict) as info:
        pages.write("Plan", mine, ALICE, base_revision=base)
    extra = info.value.extra
    assert extra["current_revision"] == theirs and extra["current_content"] == theirs_text
    conflict = extra["conflict"]
    assert conflict["yours"] == mine and conflict["base_revision"] == base
    assert "-agent's\n+mine\n" in conflict["diff"]
    assert "<<<<<<< yours\nmine\n=======\nagent's\n>>>>>>> current" in conflict["with_markers"]
    assert commits(pages)[0] == theirs and pages.read("Plan")["content"] == theirs_text


def test_identical_concurrent_change_is_clean(pages):
    base = pages.write("Plan", BASE, ALICE)["revision"]
    same = BASE.replace("first", "same")
    theirs = pages.write("Plan", same, AGENT)["revision"]
    result = pages.write("Plan", same, ALICE, base_revision=base)
    assert result["merged"] is True and result["revision"] == theirs == commits(pages)[0]


def test_page_deleted_since_base_is_a_conflict(pages):
    base = pages.write("Plan", BASE, ALICE)["revision"]
    pages.delete("Plan", AGENT)
    head = commits(pages)[0]
    with pytest.raises(Conflict, match="deleted or renamed") as info:
        pages.write("Plan", BASE + "more\n", ALICE, base_revision=base)
    assert info.value.extra["current_revision"] is None and commits(pages)[0] == head


def test_page_renamed_since_base_is_a_conflict_under_both_names(pages):
    base = pages.write("Plan", BASE, ALICE)["revision"]
    pages.rename("Plan", "Roadmap", AGENT)
    head = commits(pages)[0]
    with pytest.raises(Conflict, match="deleted or renamed"):
        pages.write("Plan", BASE + "more\n", ALICE, base_revision=base)
    with pytest.raises(Conflict, match="did not exist at revision"):
        pages.write("Roadmap", BASE + "more\n", ALICE, base_revision=base)
    assert commits(pages)[0] == head


def test_unknown_base_revision_is_a_conflict_and_a_bad_one_a_bad_request(pages):
    pages.write("Plan", BASE, ALICE)
    with pytest.raises(Conflict, match="not a revision of this wiki"):
        pages.write("Plan", "x\n", ALICE, base_revision="abcdef123456")
    with pytest.raises(BadRequest):
        pages.write("Plan", "x\n", ALICE, base_revision="HEAD~1")


def test_rebase_of_a_new_page_someone_else_created_conflicts(pages):
    assert pages.rebase("Fresh", "mine\n", None)["merged"] is False
    theirs = pages.write("Fresh", "theirs\n", AGENT)["revision"]
    with pytest.raises(Conflict, match="created by someone else") as info:
        pages.rebase("Fresh", "mine\n", "")
    assert info.value.extra["current_revision"] == theirs
    assert pages.rebase("Fresh", "theirs\n", "")["content"] == "theirs\n"


def test_rebase_merges_without_writing(pages):
    base = pages.write("Plan", BASE, ALICE)["revision"]
    theirs = pages.write("Plan", BASE.replace("second", "agent's"), AGENT)["revision"]
    result = pages.rebase("Plan", BASE.replace("first", "mine"), base[:6])
    assert result["merged"] and result["current_revision"] == theirs == commits(pages)[0]
    assert "mine" in result["content"] and "agent's" in result["content"]


def test_without_git_a_stale_write_is_a_conflict_and_writes_nothing(pages, monkeypatch):
    base = pages.write("Plan", BASE, ALICE)["revision"]
    theirs = pages.write("Plan", BASE.replace("second", "agent's"), AGENT)["revision"]
    monkeypatch.setattr(merge_module, "git_env", lambda folder: {"PATH": "/nonexistent"})
    with pytest.raises(MergeFailed):
        merge("a\n", "b\n", "c\n")
    with pytest.raises(Conflict, match="could not be merged") as info:
        pages.write("Plan", BASE.replace("first", "mine"), ALICE, base_revision=base)
    assert info.value.extra["current_revision"] == theirs == commits(pages)[0]


def test_a_merge_past_its_time_is_a_conflict_and_writes_nothing(pages, monkeypatch):
    """Review 48: three texts of random one-letter lines took git merge-file 4.9 s of CPU, and
    its timeout was twice the worker's. A merge that takes longer than GIT_TIMEOUT stops: the
    write is a conflict saying the page could not be merged, and nothing is written."""
    draws = random.Random(48)
    text = lambda: "".join(draws.choice("ab") + "\n" for _ in range(100_000))  # noqa: E731
    base = pages.write("Big", text(), ALICE)["revision"]
    theirs = pages.write("Big", text(), AGENT)["revision"]
    monkeypatch.setattr(merge_module, "GIT_TIMEOUT", 0.01)
    with pytest.raises(Conflict, match="could not be merged") as info:
        pages.write("Big", text(), ALICE, base_revision=base)
    assert info.value.extra["current_revision"] == theirs == commits(pages)[0]
