import os
import subprocess
from pathlib import Path

import pytest
from otterwiki.gitstorage import GitStorage

from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import NotFound
from app.core.errors import PayloadTooLarge
from app.pages import search as pagesearch
from app.pages.code_spans import WIKILINK_RE
from app.pages.links import MARKDOWN_LINK_RE
from app.pages.paths import MAX_CONTENT_BYTES
from app.pages.paths import PathRules
from app.pages.paths import clean_limit
from app.pages.storage import Pages
from tests.pages.conftest import ALICE

links = pagesearch.links
orphans = pagesearch.orphans


def link_map_path(pages) -> Path:
    """The kept link map beside the repository, as Settings.link_map_path puts it."""
    return Path(pages.storage.repo.working_dir).parent / "links.db"


def git_log(repo, *paths: str) -> list[str]:
    """The commits of `repo` (touching `paths`, if any), newest first, as git log lists them."""
    command = ["git", "log", "--format=%H", *(["--", *paths] if paths else [])]
    return subprocess.run(command, cwd=repo, capture_output=True, text=True).stdout.split()


def test_write_creates_page_file_and_commit(pages, repo):
    result = pages.write("Notes/Todo List", "one\n", ALICE)
    assert result["created"] is True and result["path"] == "Notes/Todo List"
    assert (repo / "notes" / "todo list.md").read_text() == "one\n"
    assert git_log(repo)[0] == result["revision"]


def test_write_commit_has_author_and_default_message(pages):
    pages.write("Plan", "x", ALICE)
    commit = pages.storage.repo.head.commit
    assert (commit.author.name, commit.author.email) == ALICE
    assert commit.message == "Create Plan via API"


def test_read_returns_content_and_revision(pages):
    written = pages.write("plan", "text\n", ALICE, message="first")
    page = pages.read("Plan")
    assert page["content"] == "text\n" and page["revision"] == written["revision"]
    assert page["author"] == "alice.test" and page["last_changed"]


def test_update_without_base_revision_overwrites(pages):
    pages.write("plan", "a", ALICE)
    result = pages.write("plan", "b", ALICE)
    assert result["created"] is False
    assert pages.read("plan")["content"] == "b"


def test_update_with_current_base_revision(pages):
    first = pages.write("plan", "a", ALICE)
    second = pages.write("plan", "b", ALICE, base_revision=first["revision"])
    assert second["revision"] != first["revision"]


def test_stale_base_revision_conflicts_and_writes_nothing(pages, repo):
    first = pages.write("plan", "a", ALICE)
    second = pages.write("plan", "b", ALICE)
    with pytest.raises(Conflict) as info:
        pages.write("plan", "c", ALICE, base_revision=first["revision"])
    assert info.value.extra["current_revision"] == second["revision"]
    assert pages.read("plan")["content"] == "b" and git_log(repo)[0] == second["revision"]


def test_base_revision_for_missing_page_conflicts(pages):
    head = pages.read("home")["revision"]
    with pytest.raises(Conflict) as info:
        pages.write("nothing-here", "x", ALICE, base_revision=head)
    assert info.value.extra["current_revision"] is None


def test_unchanged_write_makes_no_commit(pages, repo):
    first = pages.write("plan", "same", ALICE)
    again = pages.write("plan", "same", ALICE)
    assert again["revision"] == first["revision"] and len(git_log(repo)) == 2


def test_read_at_revision(pages):
    first = pages.write("plan", "old", ALICE)
    pages.write("plan", "new", ALICE)
    page = pages.read("plan", revision=first["revision"])
    assert page["content"] == "old" and page["revision"] == first["revision"]


def test_read_keeps_trailing_newlines(pages):
    first = pages.write("plan", "line\n\n", ALICE)
    pages.write("plan", "new", ALICE)
    assert pages.read("plan", revision=first["revision"])["content"] == "line\n\n"
    assert pages.read("plan")["content"] == "new"


def test_uncommitted_file_reads_from_disk(pages, repo):
    (repo / "loose.md").write_text("not in git")
    page = pages.read("loose")
    assert page["content"] == "not in git" and page["revision"] is None


def test_read_at_revision_before_the_page_existed(pages):
    head = pages.read("home")["revision"]
    pages.write("later", "x", ALICE)
    with pytest.raises(NotFound):
        pages.read("later", revision=head)


@pytest.mark.parametrize("revision", ["HEAD", "--all", "xyz", "abc", "0" * 65])
def test_malformed_revision_is_bad_request(pages, revision):
    with pytest.raises(BadRequest):
        pages.read("home", revision=revision)


def test_short_revision_as_otterwiki_shows_it(pages):
    first = pages.write("plan", "old", ALICE)
    pages.write("plan", "new", ALICE)
    assert pages.read("plan", revision=first["revision"][:6])["content"] == "old"


def test_unknown_revision_is_not_found(pages):
    with pytest.raises(NotFound):
        pages.read("home", revision="0" * 40)


def test_missing_page_is_not_found(pages):
    with pytest.raises(NotFound):
        pages.read("nope")


@pytest.mark.parametrize(
    "path",
    [
        "../etc/passwd",
        "a/../b",
        "a\x00b",
        "/abs",
        "a//b",
        "a/",
        ".git/config",
        "a/.git",
        "",
        "x\ny",
        "tab\there",
        "v1.2",
        "-/admin",
        "a" * 201,
        "a/" * 300 + "b",
        " lead",
    ],
)
def test_bad_paths_are_rejected(pages, path):
    with pytest.raises(BadRequest):
        pages.write(path, "x", ALICE)


def test_case_insensitive_paths_like_otterwiki(pages, repo):
    pages.write("Projects/Road Map", "x", ALICE)
    assert pages.read("projects/road map")["path"] == "Projects/Road Map"
    assert (repo / "projects" / "road map.md").exists()


def test_retained_case(repo):
    wiki = Pages(GitStorage(str(repo), initialize=True), rules=PathRules(retain_case=True))
    wiki.write("CamelCase", "x", ALICE)
    assert (repo / "CamelCase.md").exists()
    with pytest.raises(NotFound):
        wiki.read("camelcase")


def test_content_size_cap(pages):
    with pytest.raises(PayloadTooLarge):
        pages.write("big", "x" * (MAX_CONTENT_BYTES + 1), ALICE)


@pytest.mark.parametrize("content", [None, 5, ["x"], "nul\x00byte"])
def test_bad_content_is_rejected(pages, content):
    with pytest.raises(BadRequest):
        pages.write("p", content, ALICE)


def test_list_with_prefix_sizes_and_dates(pages):
    pages.write("Projects/Alpha", "12345", ALICE)
    pages.write("Projects/Beta", "1", ALICE)
    listed = pages.list(prefix="projects/")
    assert [p["path"] for p in listed] == ["Projects/Alpha", "Projects/Beta"]
    assert listed[0]["size"] == 5 and listed[0]["last_changed"]


def test_list_skips_attachments(pages, repo):
    (repo / "home").mkdir()
    (repo / "home" / "pic.png").write_bytes(b"\x89PNG")
    assert [p["path"] for p in pages.list()] == ["Home"]


def test_symlink_out_of_the_repo_is_no_page(pages, repo, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    (repo / "leak.md").symlink_to(tmp_path / "secret.txt")
    assert "Leak" not in [p["path"] for p in pages.list()]
    with pytest.raises(NotFound):
        pages.read("leak")
    with pytest.raises(BadRequest):
        pages.write("leak", "overwrite", ALICE)
    assert (tmp_path / "secret.txt").read_text() == "secret"


def test_delete_removes_page_in_one_commit(pages, repo):
    pages.write("gone", "x", ALICE)
    result = pages.delete("gone", ALICE)
    assert not (repo / "gone.md").exists() and git_log(repo)[0] == result["revision"]
    with pytest.raises(NotFound):
        pages.read("gone")


def test_delete_missing_page(pages):
    with pytest.raises(NotFound):
        pages.delete("nope", ALICE)


def test_history_newest_first(pages):
    pages.write("plan", "a", ALICE, message="one")
    pages.write("plan", "b", ALICE, message="two")
    revisions = pages.history("plan", limit=10)["revisions"]
    assert [r["message"] for r in revisions] == ["two", "one"]
    assert revisions[0]["author"] == "alice.test"


def test_changes_list_paths(pages):
    pages.write("a/b", "x", ALICE, message="made b")
    change = pages.changes(limit=1)[0]
    assert change["paths"] == ["A/B"] and change["message"] == "made b"


def test_rename_moves_page_and_attachments_in_one_commit(pages, repo):
    pages.write("old", "content", ALICE)
    pages.write("old/sub", "child", ALICE)
    before = len(git_log(repo))
    result = pages.rename("old", "Archive/New", ALICE)
    assert result["path"] == "Archive/New" and result["from"] == "Old"
    assert pages.read("archive/new/sub")["content"] == "child"
    assert not (repo / "old.md").exists() and len(git_log(repo)) == before + 1


def test_rename_updates_links(pages):
    pages.write("target", "t", ALICE)
    pages.write("linker", "see [[Target]] and [it](/Target#top) and [[x|Target]]", ALICE)
    result = pages.rename("target", "Moved", ALICE, update_links=True)
    assert result["updated_pages"] == ["Linker"]
    assert pages.read("linker")["content"] == "see [[Moved]] and [it](/Moved#top) and [[x|Moved]]"


def test_rename_rewrites_links_to_attachments_and_subpages(pages):
    pages.write("old", "x", ALICE)
    pages.write("other", "![p](/Old/pic.png) [s](/old/sub) [[Elsewhere]]", ALICE)
    pages.rename("old", "New Name", ALICE, update_links=True)
    content = pages.read("other")["content"]
    assert content == "![p](/New%20Name/pic.png) [s](/New%20Name/sub) [[Elsewhere]]"


def test_rename_onto_existing_page_conflicts_and_changes_nothing(pages, repo):
    pages.write("a", "1", ALICE)
    pages.write("b", "2", ALICE)
    with pytest.raises(Conflict):
        pages.rename("a", "b", ALICE)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True)
    assert status.stdout == b"" and pages.read("a")["content"] == "1"


def test_rename_below_itself_is_rejected(pages):
    pages.write("a", "1", ALICE)
    with pytest.raises(BadRequest):
        pages.rename("a", "a/b", ALICE)


def test_links_and_backlinks(pages):
    pages.write("a", "[[B]] [c](/C) [ext](https://x.org) ![img](/a/p.png)", ALICE)
    pages.write("b", "back to [[A]]", ALICE)
    result = links(pages, "A")
    assert result["outgoing"] == ["B", "C"] and result["missing"] == ["C"]
    assert result["backlinks"] == ["B"]


def test_orphans_exclude_home_and_linked_pages(pages):
    pages.write("home", "[[Linked]]", ALICE)
    pages.write("linked", "x", ALICE)
    pages.write("lonely", "[[Lonely]]", ALICE)
    assert orphans(pages) == ["Lonely"]


LINK_HEAVY = [
    "[" * 200_000,
    "[[" + "[" * 200_000,
    "![" * 100_000,
    "[a" * 100_000,
    "[[a" * 70_000,
    "[x](" * 50_000,
    "[[x|" * 50_000,
    "[x](a(b" * 50_000,
    "[x](()" * 50_000,
]


@pytest.mark.parametrize("content", LINK_HEAVY, ids=lambda text: f"{text[:4]}x{len(text)}")
def test_links_of_a_page_of_brackets_take_one_scan(pages, content):
    """Twenty-third review: a page of 30,000 '[' made each /links and /orphans call spend
    17 s in the link patterns (each try scanned to the page's end). Each try now stops at
    the next '[' or '[[': these pages, several times longer, are read in one pass."""
    pages.write("brackets", content, ALICE)
    pages.write("target", "see [[Brackets]] and [it](/Target)", ALICE)
    assert links(pages, "Brackets")["backlinks"] == ["Target"]
    assert orphans(pages) == ["Target"]
    assert pages.rename("brackets", "Moved", ALICE, update_links=True)["updated_pages"] == [
        "Target"
    ]


def test_link_text_may_hold_a_single_bracket_but_not_a_new_link():
    text = "[[B [x]]] [[a [[C]] [t [u](/D) [[E[1]]]"
    assert [m.group(1) for m in WIKILINK_RE.finditer(text)] == ["B [x", "C", "E[1"]
    assert [m.group(2, "target") for m in MARKDOWN_LINK_RE.finditer(text)] == [("u", "/D")]


def test_attachments_list_and_read(pages, repo):
    pages.write("doc", "x", ALICE)
    (repo / "doc").mkdir()
    (repo / "doc" / "pic.png").write_bytes(b"\x89PNG\r\n")
    pages.storage.commit(["doc/pic.png"], "add pic", ALICE)
    listed = pages.attachments("doc")
    assert listed[0]["name"] == "pic.png" and listed[0]["mime"] == "image/png"
    assert pages.attachment("doc", "pic.png") == (b"\x89PNG\r\n", "image/png")


@pytest.mark.parametrize("name", ["..", "a/b", "x\x00", ".git", "page.md"])
def test_bad_attachment_names(pages, name):
    with pytest.raises(BadRequest):
        pages.attachment("home", name)


@pytest.mark.parametrize("raw", ["0", "-1", "x", "100000"])
def test_bad_limits(raw):
    with pytest.raises(BadRequest):
        clean_limit(raw, 10)


def test_append_adds_a_paragraph_or_creates_the_page(pages):
    created = pages.append("Log", "day one", ALICE)
    assert created["created"] is True and pages.read("Log")["content"] == "day one"
    added = pages.append("Log", "day two\n", ALICE, message="more")
    assert added["created"] is False and pages.read("Log")["content"] == "day one\n\nday two\n"


@pytest.mark.parametrize("addition", ["", "  \n", None, 5])
def test_append_refuses_nothing_to_add(pages, addition):
    pages.write("Kept", "text\n", ALICE)
    with pytest.raises(BadRequest):
        pages.append("Kept", addition, ALICE)
    assert pages.read("Kept")["content"] == "text\n"


def test_last_commits_stop_once_every_wanted_file_is_found(pages, repo):
    """On a long history the page list once walked the whole log (25 s on a million commits)
    though every page had changed lately; the walk now stops at the last wanted file."""
    pages.write("Old", "old\n", ALICE)
    for n in range(30):
        pages.write("New", f"version {n}\n", ALICE)
    newest = git_log(repo)[0]
    everything = pages.last_commits()
    assert everything["new.md"].revision == newest
    assert {"old.md", "home.md"} <= set(everything)
    early = pages.last_commits({"new.md"})
    assert early["new.md"].revision == newest and "old.md" not in early  # stopped early
    both = pages.last_commits({"new.md", "old.md"})
    assert both["old.md"] == everything["old.md"]
    assert pages.last_commits(set()) == {}
    assert pages.last_commits({"never.md"})["new.md"].revision == newest  # walked to the end


def test_last_commits_under_a_folder_see_only_its_files(pages):
    pages.upload_attachment("Home", "a.txt", b"a", ALICE)
    pages.write("Other", "x\n", ALICE)
    found = pages.last_commits(under="home")
    assert set(found) == {"home/a.txt"}
    assert [a["name"] for a in pages.attachments("Home")] == ["a.txt"]
    assert pages.attachments("Home")[0]["last_changed"] == found["home/a.txt"].date


def test_the_page_list_and_its_dates_stay_the_same(pages):
    pages.write("Old", "old\n", ALICE)
    pages.write("New", "new\n", ALICE)
    everything = pages.last_commits()
    listed = {page["path"]: page["last_changed"] for page in pages.list()}
    assert listed == {
        "Home": everything["home.md"].date,
        "Old": everything["old.md"].date,
        "New": everything["new.md"].date,
    }
    assert [page["path"] for page in pages.list("ol")] == ["Old"]


def test_a_page_made_in_a_merge_commit_has_that_merge_as_its_last_commit(pages, repo):
    """Fifth review: a pushed merge that added a page itself left the page undated in the
    list, and every listing walked the whole log looking for it."""

    def run(*args):
        command = ["git", "-c", "user.name=m", "-c", "user.email=m@m", *args]
        subprocess.run(command, cwd=repo, check=True, capture_output=True)

    main = subprocess.run(
        ["git", "branch", "--show-current"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    run("checkout", "-q", "-b", "side")
    (repo / "side.md").write_text("side\n")
    run("add", "side.md")
    run("commit", "-q", "-m", "side")
    run("checkout", "-q", main)
    pages.write("Other", "other\n", ALICE)  # main moved on: the merge is a true merge
    run("merge", "-q", "--no-ff", "--no-commit", "side")
    (repo / "merged.md").write_text("made in the merge\n")
    run("add", "merged.md")
    run("commit", "-q", "-m", "merge side")
    merge = git_log(repo)[0]
    found = pages.last_commits({"merged.md", "side.md"})
    assert found["merged.md"].revision == merge
    assert found["side.md"].revision == merge  # it came to main with the merge
    listed = {page["path"]: page["last_changed"] for page in pages.list()}
    assert listed["Merged"] is not None and listed["Side"] is not None


def test_each_distinct_link_is_resolved_once_and_a_page_follows_a_bounded_number(
    pages, monkeypatch
):
    """Twenty-fourth review: 24 pages of 80,000 links each (to one page) made /links and
    /orphans resolve every link, past the worker timeout. Each distinct link text is now
    resolved once; MAX_LINK_TARGETS is more distinct ones than a page can hold (past it,
    413), so every link of a page is followed (thirty-first review: 10,000 were, silently)."""
    from app.pages import links as link_module

    pages.write("target", "t", ALICE)
    pages.write("many", "[[Target]] [t](Target) " * 20_000, ALICE)
    pages.write("distinct", " ".join(f"[[P{n}]]" for n in range(12_000)), ALICE)
    resolved = []
    real = link_module._resolve
    monkeypatch.setattr(link_module, "_resolve", lambda *args: resolved.append(1) or real(*args))
    assert links(pages, "Many")["outgoing"] == ["Target"]
    assert len(resolved) <= 2 + link_module.MAX_LINK_TARGETS + 1
    assert len(links(pages, "Distinct")["outgoing"]) == 12_000
    resolved.clear()
    pages.rename("target", "Moved", ALICE, update_links=True)
    assert len(resolved) < 12_000 + 10  # per distinct text in each page, not per link
    assert pages.read("many")["content"].count("[[Moved]]") == 20_000


@pytest.mark.parametrize(
    ("linker", "content", "rewritten"),
    [
        ("linker", "[a](/Old/Page)", "[a](/New)"),
        ("linker", "[a](/old/page)", "[a](/New)"),
        ("linker", "[a](/%4Fld/%50age)", "[a](/New)"),
        ("linker", "[a](/Ｏｌｄ/Ｐａｇｅ)", "[a](/New)"),
        ("linker", "[[OLD/PAGE]]", "[[New]]"),
        ("old/linker", "[a](Page)", "[a](/New)"),
        ("elsewhere/page", "[a](../Old/Page)", "[a](/New)"),
        # Subpages move with their page: their dot-segment links hold as they are.
        # a moved page's relative link keeps naming what it named (`old`), from anywhere
        ("old/page/child", "[up](..)", "[up](/old)"),
        ("old/page/a/b", "[up](../..)", "[up](/old)"),
        ("linker", "![p](/Old/Page/pic.png)", "![p](/New/pic.png)"),
    ],
)
def test_rename_finds_links_however_they_are_spelled(pages, linker, content, rewritten):
    """Rename skips pages that cannot link to the old page (twenty-fourth review: a wiki of
    distinct links was slow to rename in); every spelling of a link to it is still found."""
    pages.write("old/page", "x", ALICE)
    pages.write(linker, content, ALICE)
    pages.rename("old/page", "New", ALICE, update_links=True)
    moved = linker.replace("old/page", "new", 1) if linker.startswith("old/page") else linker
    assert pages.read(moved)["content"] == rewritten


@pytest.mark.parametrize(
    ("content", "rewritten"),
    [
        ("[[T/Sub]]", "[[New/Sub]]"),
        ("[[Lbl|T/Sub]]", "[[Lbl|New/Sub]]"),
        ("[[/t/sub#Part]]", "[[/New/sub#Part]]"),
        ("[r]\n\n[r]: /T", "[r]\n\n[r]: /New"),
        ("[s]\n\n[s]: /T/Sub", "[s]\n\n[s]: /New/Sub"),
        ('[s]\n\n  [s]: <T/Sub#x> "t"', '[s]\n\n  [s]: </New/Sub#x> "t"'),
        ("[a](T/Sub/pic.png) ![b](/t/SUB/x.png)", "[a](/New/Sub/pic.png) ![b](/New/SUB/x.png)"),
        ('[a]( <T/Sub#x> "t")', '[a]( </New/Sub#x> "t")'),
        ("`[[T]]` and [[T]]", "`[[T]]` and [[New]]"),
        ("```\n[[T]] [x](/T)\n```\n[[T]]", "```\n[[T]] [x](/T)\n```\n[[New]]"),
        ("[^T]: a note on [[T]]", "[^T]: a note on [[New]]"),
        ("[r] `x` [r]: /T\n[[T]]", "[r] `x` [r]: /T\n[[New]]"),  # a definition starts its line
        ("[[T]]\n~~~\nnever closed [[T]]\n", "[[New]]\n~~~\nnever closed [[T]]\n"),
        ("`[[`[[T]]`]]`", "`[[`[[New]]`]]`"),
        # `[[../T]]` is `href="/../T"`, which a browser opens as /T (thirty-second review)
        (
            "[[Tee]] [[T2/Sub]] [x](/Tx/Sub) [y](/T.png) [[../T]]",
            "[[Tee]] [[T2/Sub]] [x](/Tx/Sub) [y](/T.png) [[New]]",
        ),
    ],
)
def test_rename_moves_links_below_the_page_reference_links_and_never_code(
    pages, content, rewritten
):
    """Twenty-sixth review: a rename with update_links left `[[T/Sub]]`, `[[Lbl|T/Sub]]` and
    reference definitions (`[r]: /T`) pointing at the old names, and rewrote `[[T]]` inside
    inline code. The link map finds exactly the pages the rewrite changes."""
    pages.link_map = link_map_path(pages)
    pages.write("t", "x", ALICE)
    pages.write("t/sub", "x", ALICE)
    pages.write("linker", content, ALICE)
    assert ("linker.md" in pages._linking_to("T")) == (rewritten is not None)
    result = pages.rename("t", "New", ALICE, update_links=True)
    assert pages.read("linker")["content"] == (rewritten or content)
    assert result["updated_pages"] == (["Linker"] if rewritten else [])


def test_reference_links_count_as_links():
    """Twenty-sixth review: `[here][o]` with `[o]: /Orph` links to Orph in the rendered page,
    but /links, /orphans and MCP did not see it."""
    from app.pages.links import page_links
    from app.pages.paths import PathRules

    found = page_links(PathRules(), "a/b", "[here][o] [x]\n\n[o]: /Orph\n [x]: <Rel#h>\n[^n]: /No")
    assert found.pages == ("Orph", "A/Rel") and found.relative


def test_rename_reads_only_the_pages_that_link_to_it(pages, monkeypatch):
    """Twenty-fifth review: a rename with update_links rewrote every page of the wiki, and on
    9,900 link-heavy pages it was killed at the worker timeout. With the wiki's link map
    read, it resolves the links of the pages that link to the old page only."""
    from app.pages import links

    pages.link_map = link_map_path(pages)
    pages.write("target", "t", ALICE)
    pages.write("linker", "[[Target]] [up](/Target/pic.png)", ALICE)
    pages.write("folder", "![p](/target/x.png)", ALICE)
    for name in ("unrelated", "mentions target"):
        pages.write(name, " ".join(f"[[P{n}]] target" for n in range(5_000)), ALICE)
    orphans(pages)  # the map is read once, as any /links or /orphans call does
    resolved = []
    resolve = links._resolve
    monkeypatch.setattr(links, "_resolve", lambda *a: resolved.append(a[0]) or resolve(*a))
    result = pages.rename("target", "Moved", ALICE, update_links=True)
    assert result["updated_pages"] == ["Folder", "Linker"]
    assert len(resolved) < 10, len(resolved)
    assert pages.read("linker")["content"] == "[[Moved]] [up](/Moved/pic.png)"
    assert pages.read("folder")["content"] == "![p](/Moved/x.png)"


def test_link_targets_may_hold_balanced_parentheses():
    """Review 24: `[t](Sev(en))` was read as a link to `Sev(en`, which the renderer does not."""
    text = "[t](Sev(en)) [u](a(b)c(d)e) [v](x(y) [w](/P) [z](q)r)"
    assert [m.group("target") for m in MARKDOWN_LINK_RE.finditer(text)] == [
        "Sev(en)",
        "a(b)c(d)e",
        "/P",
        "q",
    ]


def test_rename_updates_links_with_parentheses(pages):
    pages.write("sev(en)", "x", ALICE)
    pages.write("linker", "[t](Sev(en)) and [[Sev(en)]]", ALICE)
    assert links(pages, "Linker")["outgoing"] == ["Sev(En)"]
    pages.rename("sev(en)", "Eight", ALICE, update_links=True)
    assert pages.read("linker")["content"] == "[t](/Eight) and [[Eight]]"


def test_a_rename_stages_its_rewritten_pages_with_one_git_add(pages, monkeypatch):
    """Thirty-second review: each rewritten page ran `git add` and `git diff --cached` (35 ms
    a page on a large index): 850 linking pages passed the worker timeout. Now one `git add`
    stages them all, names with spaces, colons and glob characters read literally."""
    import git

    names = [f"Fan {n}" for n in range(40)] + [":colon", "star*", "br[a]cket"]
    pages.write("Hub", "hub", ALICE)
    for name in names:
        pages.write(name, f"to [[Hub]] from {name}", ALICE)
    calls = []
    execute = git.cmd.Git.execute
    monkeypatch.setattr(
        git.cmd.Git,
        "execute",
        lambda self, command, *a, **k: calls.append(command) or execute(self, command, *a, **k),
    )
    answer = pages.rename("Hub", "Moved Hub", ALICE, update_links=True)
    assert len(answer["updated_pages"]) == len(names)
    adds = [command for command in calls if "add" in command[:3]]
    assert len(adds) == 1, adds
    for name in names:
        assert pages.read(name)["content"] == f"to [[Moved Hub]] from {name}"
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=pages.storage.path, capture_output=True, text=True
    )
    assert status.stdout == ""  # all of it in the one commit


def test_links_and_broken_links_agree_that_a_folder_of_pages_is_there(pages):
    """Thirty-second review: the links API called `[[Dir]]` missing where Otterwiki shows
    the folder's index (and the broken-links task did not list it)."""
    pages.write("Dir/Inside", "x", ALICE)
    pages.write("Deep/Er/Inside", "x", ALICE)
    pages.write("Pointer", "[[Dir]] [[Deep/Er]] [[Deep]] [[Nowhere]]", ALICE)
    assert links(pages, "Pointer")["missing"] == ["Nowhere"]
    assert pagesearch.broken_links(pages) == {"Pointer": ("Nowhere",)}


def test_a_rename_keeps_the_relative_links_of_the_pages_it_moves(pages):
    """Thirty-second review: after `Mv` moved to `Deep/Er/Mv2`, its own and its subpage's
    relative links were left as written and named pages that do not exist; the subpage's
    link to the page itself was not moved. Now every link still names the page it named."""
    pages.write("Other Page", "x", ALICE)
    pages.write("Mv", "[o](Other%20Page) [o2](../Other%20Page) [[Other Page]]", ALICE)
    pages.write("Mv/Kid", "[o](../Other%20Page) [sib](Sib) [up](../Mv)", ALICE)
    pages.write("Mv/Sib", "sibling", ALICE)
    before = {path: links(pages, path)["outgoing"] for path in ("Mv", "Mv/Kid")}
    answer = pages.rename("Mv", "Deep/Er/Mv2", ALICE, update_links=True)
    assert {"Deep/Er/Mv2", "Deep/Er/Mv2/Kid"} <= set(answer["updated_pages"])
    moved = {"Mv": "Deep/Er/Mv2", "Mv/Kid": "Deep/Er/Mv2/Kid", "Mv/Sib": "Deep/Er/Mv2/Sib"}
    for path, outgoing in before.items():
        after = links(pages, moved[path])
        assert after["outgoing"] == [moved.get(target, target) for target in outgoing], path
        assert after["missing"] == [], path


def test_a_read_after_a_merge_that_kept_main_s_file_gives_main_s_file(pages, repo):
    """Review 43: a read found the page's last commit as the page list does (by date, merges
    by their first parent) and took a side branch's commit whose file the merge threw away:
    it answered the discarded text, and a write on it silently replaced main's. A read gives
    the file at HEAD, with a commit where the file is that file."""

    def run(*args, when):
        env = {**os.environ, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
        command = ["git", "-c", "user.name=m", "-c", "user.email=m@m", *args]
        subprocess.run(command, cwd=repo, check=True, capture_output=True, env=env)

    main = subprocess.run(
        ["git", "branch", "--show-current"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    (repo / "mpage.md").write_text("base\n")
    run("add", "mpage.md", when="2030-01-01T10:00:00Z")
    run("commit", "-q", "-m", "base", when="2030-01-01T10:00:00Z")
    run("checkout", "-q", "-b", "side", when="2030-01-01T10:00:00Z")
    run("checkout", "-q", main, when="2030-01-01T11:00:00Z")
    (repo / "mpage.md").write_text("main version\n")
    run("commit", "-q", "-am", "A", when="2030-01-01T11:00:00Z")
    run("checkout", "-q", "side", when="2030-01-01T12:00:00Z")
    (repo / "mpage.md").write_text("branch version\n")
    run("commit", "-q", "-am", "B", when="2030-01-01T12:00:00Z")
    run("checkout", "-q", main, when="2030-01-01T13:00:00Z")
    run("merge", "-q", "--no-ff", "-s", "ours", "side", when="2030-01-01T13:00:00Z")
    read = pages.read("mpage")
    assert read["content"] == "main version\n"
    assert read["revision"] == git_log(repo, "mpage.md")[0]
