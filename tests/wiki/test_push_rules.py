"""The pre-receive rules on their own: which paths (and links) a wiki refuses."""

from __future__ import annotations

import io
import re
import subprocess

import pytest

from app.core.errors import BadRequest
from app.pages.paths import PathRules
from app.pages.paths import clean_attachment_name
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


SETTINGS_FILES = [
    ".gitattributes",
    "notes/.gitattributes",
    ".gitmodules",
    "a/.GitModules",
    # Tenth review: a pushed .mailmap made an editor's commits the owner's in every history,
    # and .gitignore left the wiki's own later writes untracked (answered, never committed).
    ".mailmap",
    ".MailMap",
    "notes/.mailmap",
    ".gitignore",
    "notes/sub/.gitignore",
    ".GITIGNORE",
]


@pytest.mark.parametrize("path", SETTINGS_FILES)
def test_files_git_reads_as_settings_are_refused(path):
    assert "holds no .gitattributes, .gitmodules, .gitignore or .mailmap" in path_problem(path)


@pytest.mark.parametrize(
    "path",
    ["home.md", "a.git/b.md", "Café/Ünïcode 日本.md", "notes/.github/x.md", ".gitkeep", "mailmap"],
)
def test_other_paths_are_accepted(path):
    assert path_problem(path) is None


def test_the_hook_is_written_executable_whatever_the_deploy_kept(tmp_path):
    folder = install_hook(tmp_path / "hooks")
    (folder / "pre-receive").chmod(0o644)  # as a copy that dropped the mode would leave it
    hook = install_hook(folder) / "pre-receive"
    assert hook.stat().st_mode & 0o777 == 0o755
    assert str(push_rules.__file__) in hook.read_text()


def raw_commit(repo, headers: list[str | bytes], message: bytes) -> str:
    """Write a commit object of exactly these header lines and message (git's own checks
    aside, as a hostile pusher can); return its id."""
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    tree = (
        subprocess.run(["git", "mktree"], cwd=repo, input=b"", capture_output=True, check=True)
        .stdout.decode()
        .strip()
    )
    lines = [h if isinstance(h, bytes) else h.encode() for h in headers]
    body = f"tree {tree}\n".encode() + b"".join(line + b"\n" for line in lines)
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


LATIN1_ME = b"Ev\xe9 <e@x.org> 1796207715 +0000"
# (author, committer, message, the fields a refusal names): Latin-1, stray and truncated
# bytes, an encoded surrogate, in each field (fourteenth review: such a commit made the
# changelog, history, blame and diff views 500).
NOT_UTF8 = [
    (LATIN1_ME, ME, b"x\n", "its author name is not UTF-8"),
    (ME, LATIN1_ME, b"x\n", "its committer name is not UTF-8"),
    (b"Me <m\xe9@x.org> 1700000000 +0000", ME, b"x\n", "its author email is not UTF-8"),
    (ME, b"Me <me@\xff.org> 1700000000 +0000", b"x\n", "its committer email is not UTF-8"),
    (ME, ME, b"raw2 \xe9\xff msg\n", "its message is not UTF-8"),
    (ME, ME, b"ok\n\nthen \xed\xa0\x80\n", "its message is not UTF-8"),
    (ME, ME, b"cut \xe2\x82", "its message is not UTF-8"),
    (b"\x80 <\xc0\xaf> 1 +0000", ME, b"x\n", "its author name and author email are"),
    (b"Me <me@x.org> 1700000000 \xff0000", ME, b"x\n", "its author line is not UTF-8"),
    (LATIN1_ME, LATIN1_ME, b"raw2 \xe9\n", "its author name, committer name and message are"),
]


@pytest.mark.parametrize(("author", "committer", "message", "refusal"), NOT_UTF8)
def test_a_commit_with_a_field_that_is_no_utf8_is_refused_naming_it(
    tmp_path, monkeypatch, author, committer, message, refusal
):
    monkeypatch.chdir(tmp_path)
    headers = [b"author " + _ident(author), b"committer " + _ident(committer)]
    sha = raw_commit(tmp_path, headers, message)
    problems = push_rules.commit_problems(sha, "did:plc:me")
    assert any(p.startswith(f"commit {sha[:12]}: {refusal}") for p in problems), problems


def _ident(ident: str | bytes) -> bytes:
    return ident if isinstance(ident, bytes) else ident.encode()


def test_another_header_that_is_no_utf8_is_refused_by_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    headers = [f"author {ME}", f"committer {ME}", b"x-note caf\xe9"]
    sha = raw_commit(tmp_path, headers, b"x\n")
    problems = push_rules.commit_problems(sha, "did:plc:me")
    assert any("its x-note is not UTF-8" in problem for problem in problems), problems


@pytest.mark.parametrize(
    "who", ["Évé Ünïcode <évé@exämple.org>", "日本語 <me@example.test>", "Zoë 🦦 <z@x.org>"]
)
def test_a_commit_in_utf8_beyond_ascii_passes(tmp_path, monkeypatch, who):
    monkeypatch.chdir(tmp_path)
    ident = f"{who} 1700000000 +0000"
    sha = raw_commit(tmp_path, [f"author {ident}", f"committer {ident}"], "é 日本 🦦\n".encode())
    assert push_rules.commit_problems(sha, "did:plc:me") == []


def commit_tree(repo, files: dict[str, bytes]) -> str:
    """A commit (in `repo`, made if missing) of exactly `files` {path: content}; its id."""
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for path, content in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(content)
    git = ["git", "-C", str(repo), "-c", "user.name=Me", "-c", "user.email=me@example.test"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "files"], check=True)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()


def test_one_blob_under_many_names_counts_each_time(tmp_path, monkeypatch):
    """Tenth review: one 10 MiB blob under 20 names, a pack of 10 KB, wrote 200 MB into the
    working tree; the tip's files must add up to at most the cap."""
    monkeypatch.chdir(tmp_path)
    blob = b"A" * 1000
    sha = commit_tree(tmp_path, {f"bulk/{n}.bin": blob for n in range(20)})
    assert push_rules.tree_problems(sha, 20 * 1000) == []
    problems = push_rules.tree_problems(sha, 20 * 1000 - 1)
    assert problems and "add up to 20000 bytes" in problems[0]


def test_a_tip_with_too_many_files_is_refused_without_reading_them_all(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(push_rules, "MAX_FILES", 5)
    sha = commit_tree(tmp_path, {f"f{n}.txt": b"x" for n in range(6)})
    assert "holds 6 files, more than the 5" in push_rules.tree_problems(sha, 10**9)[0]
    monkeypatch.setattr(push_rules, "MAX_CHANGED_PATHS", 5)
    with pytest.raises(push_rules._Refused, match="more than 5 files"):
        push_rules.tree_problems(sha, 10**9)


def test_a_wiki_already_past_a_cap_may_push_what_does_not_grow_it(tmp_path, monkeypatch):
    """Twelfth review: the page API took a wiki past 10,000 files, and then every push was
    refused, even one adding a single page. Only what a push adds counts now; names already
    in the wiki pass too, so an old one never blocks every later push."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(push_rules, "MAX_FILES", 5)
    files = {f"f{n}.txt": b"x" * 10 for n in range(6)} | {"Old.md": b"a", "old.md": b"b"}
    old = commit_tree(tmp_path, files)
    same = commit_tree(tmp_path, files | {"f0.txt": b"y" * 10})  # an edit: no more files
    assert push_rules.tree_problems(same, 50, True, old) == []
    more = commit_tree(tmp_path, files | {"f9.txt": b"z"})
    problems = push_rules.tree_problems(more, 50, True, old)
    assert any("holds 9 files" in problem for problem in problems), problems
    assert any("add up to 63 bytes" in problem for problem in problems), problems
    assert not any("Old.md" in problem for problem in problems), problems


def test_a_push_changing_too_many_paths_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(push_rules, "MAX_CHANGED_PATHS", 5)
    sha = commit_tree(tmp_path, {f"f{n}.txt": str(n).encode() for n in range(6)})
    subprocess.run(["git", "update-ref", "-d", "refs/heads/master"], cwd=tmp_path)
    subprocess.run(["git", "update-ref", "-d", "refs/heads/main"], cwd=tmp_path)
    with pytest.raises(push_rules._Refused, match="more than 5 paths"):
        push_rules.new_entries(sha)


def test_a_huge_commit_is_refused_unread(tmp_path, monkeypatch):
    """Tenth review: a 200 MB message (a pack of a few hundred KB) made every changelog view
    and feed serve 200 MB."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(push_rules, "MAX_COMMIT_BYTES", 4096)
    sha = raw_commit(tmp_path, [f"author {ME}", f"committer {ME}"], b"x" * 5000)
    read = []
    monkeypatch.setattr(push_rules, "_objects", lambda shas: read.extend(shas) or [])
    problems = push_rules.commit_problems(sha, "did:plc:me")
    assert any("more than the 4096 a commit may be" in problem for problem in problems)
    assert read == []


def test_a_flood_of_ref_updates_is_refused_at_once(tmp_path, monkeypatch, capsys):
    """Tenth review: 3,000 no-op updates of main ran 9,000 git processes (53 s, past the
    worker timeout) from a request of 1,231 gzipped bytes."""
    monkeypatch.chdir(tmp_path)
    zero = "0" * 40
    lines = "".join(f"{zero} {zero} refs/heads/main\n" for _ in range(push_rules.MAX_UPDATES + 1))
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    monkeypatch.setattr(push_rules, "update_problems", lambda *a: pytest.fail("checked one"))
    assert push_rules.main() == 1
    assert f"updates {push_rules.MAX_UPDATES + 1} refs" in capsys.readouterr().err


def test_new_commits_adding_up_past_the_push_total_are_refused(tmp_path, monkeypatch):
    """Eleventh review: 300 commits of just under the per-commit cap made history views serve
    hundreds of MB; what one push brings is capped in all, too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(push_rules, "MAX_COMMITS_BYTES", 1000)
    sha = raw_commit(tmp_path, [f"author {ME}", f"committer {ME}"], b"x" * 2000)
    problems = push_rules.commit_problems(sha, "did:plc:me")
    assert len(problems) == 1 and "more than the 1000 one push may bring" in problems[0]


def test_commits_are_read_a_batch_at_a_time(tmp_path, monkeypatch):
    """Eleventh review: a thousand 1 MB commits (a 3.5 MiB pack) were read at once: 2 GB."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(push_rules, "COMMIT_BATCH_BYTES", 1)
    first = raw_commit(tmp_path, [f"author {ME}", f"committer {ME}"], b"one\n")
    tree = subprocess.run(
        ["git", "rev-parse", f"{first}^{{tree}}"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    body = f"tree {tree}\nparent {first}\nauthor {ME}\ncommitter {ME}\n\ntwo\n".encode()
    second = (
        subprocess.run(
            ["git", "hash-object", "-t", "commit", "-w", "--stdin"],
            cwd=tmp_path,
            input=body,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    batches = []
    objects = push_rules._objects
    monkeypatch.setattr(push_rules, "_objects", lambda shas: batches.append(shas) or objects(shas))
    assert push_rules.commit_problems(second, "did:plc:me") == []
    assert sorted(map(len, batches)) == [0, 1, 1]


# (files of the tip, whether the wiki lowercases page names, what a refusal names or None)
NAMES = [
    ({"page1.md": b"a", "Page1.md": b"b"}, False, "'Page1.md' and 'page1.md'"),
    ({"docs/a.png": b"a", "Docs/A.png": b"b"}, False, "differ only in case"),
    ({"notes.TXT": b"a", "notes.txt": b"b"}, True, "differ only in case"),
    ({"Evil.md": b"a"}, True, "name it 'evil.md'"),
    ({"Docs/page.md": b"a"}, True, "name it 'docs/page.md'"),
    ({"ÉTÉ.md": b"a"}, True, "name it 'été.md'"),
    ({"Foo/img.png": b"a"}, True, "name it 'foo/img.png'"),  # page Foo's attachment
    ({"Evil.md": b"a", "Docs/page.md": b"b"}, False, None),  # the wiki keeps the case
    ({"straße.md": b"a", "strasse.md": b"b"}, True, None),  # two names, both opened
    ({"evil.md": b"a", "docs/Photo.PNG": b"b", "README.MD": b"c"}, True, None),  # no pages
    # Fourteenth review: café.md in one Unicode form and in another were both taken, and one
    # could never be opened; a\\b.md was listed, and answered 404 (the page API 400).
    ({"caf\u00e9.md": b"a", "cafe\u0301.md": b"b"}, False, "or in Unicode form"),
    ({"Caf\u00e9.md": b"a", "cafe\u0301.md": b"b"}, False, "or in Unicode form"),
    ({"d\u00e9j\u00e0/a.png": b"a", "de\u0301ja\u0300/a.png": b"b"}, False, "Unicode form"),
    (
        {"Caf\u00e9/\u00dcn\u00efcode \u65e5\u672c.md": b"a", "notes/pic.v1.png": b"b"},
        False,
        None,
    ),
    ({".gitkeep": b"", "notes/.gitkeep": b"", "logo.png": b"a", "a b/c d.md": b"c"}, False, None),
]
# One file each, that no wiki could open, and what its refusal says: a name in another Unicode
# form than Otterwiki opens (NFKC), and every name the page API refuses in a page path or an
# attachment's name.
UNOPENABLE = [
    # Sixteenth review: GitPython's index reader refuses a path that starts with a drive name,
    # and every write to the wiki failed (500) once one was pushed; Otterwiki strips a leading
    # '-' off a page's path, so `-x.md` was listed and never opened.
    ("c:notes.md", "must not start with a drive name"),
    ("1:1 with Bob.md", "must not start with a drive name"),
    ("-draft.md", "must not start with '-'"),
    ("cafe\u0301.md", "not in Unicode NFKC form: the wiki opens 'caf\u00e9'"),
    ("\ufb01le.md", "not in Unicode NFKC form: the wiki opens 'file'"),
    ("Cafe\u0301/img.png", "not in Unicode NFKC form"),
    ("a\\b.md", "page path must not contain \\"),
    ("notes\\old/page.md", "page path must not contain \\"),
    ("docs/a\\b.png", "attachment name must not contain slashes"),
    ("v1.2.md", "page path must not contain ."),
    ("docs.v1/pic.png", "page path must not contain ."),
    ("what?.md", "page path must not contain ?"),
    ("a|b.md", "page path must not contain |"),
    ("$x.md", "page path must not contain $"),
    ("hi!.md", "page path must not contain !"),
    ("#tag.md", "page path must not contain #"),
    ("trail /x.md", "must not start or end with spaces"),
    ("S\ufffdx.md", "page path is not valid UTF-8"),
    ("img/\ufffd.png", "attachment name is not valid UTF-8"),
    (".md", "page path is empty"),
    ("a" * 201 + ".md", "longer than 200 bytes"),
    ("x/" + "b" * 201 + ".png", "attachment name is longer than 200 bytes"),
    # Seventeenth review: a pushed a/-x.md was shown, but the page API, the editor and MCP
    # refused it; one rule for both now.
    ("notes/-x.md", "segments must not start with '-'"),
    ("notes/-x/pic.png", "segments must not start with '-'"),
    ("/".join(["p"] * 65) + ".md", "more than 64 parts"),
    # Review 55: hidden files, yet listed as the pages `..` and `.`, which nothing could open.
    ("...md", "'.' or '..' segments"),
    ("..md", "'.' or '..' segments"),
    ("notes/...md", "'.' or '..' segments"),
    # Review 56: the same kind, spelled otherwise.
    ("....md", "page path must not contain ."),
    (". .md", "page path must not contain ."),
    (".. .md", "page path must not contain ."),
    ("notes/.hidden.md", "page path must not contain ."),
]


def _with_its_page(name: str) -> dict[str, bytes]:
    """`name` and, for an attachment, its page: a file under no page is listed nowhere."""
    folder = name.rpartition("/")[0]
    page = {} if name.endswith(".md") or not folder else {f"{folder}.md": b"# page"}
    return {name: b"a", **page}


NAMES += [(_with_its_page(name), False, refusal) for name, refusal in UNOPENABLE]
# Files under no page, hidden or not, are listed nowhere: their folders' names mislead no one
# (a repository's CI settings, its .gitignore).
NAMES += [
    ({name: b"a"}, False, None)
    for name in (
        ".github/workflows/ci.yml",
        ".github/pull_request_template.md",
        "notes/v1.2/x.png",
        "a b /c.txt",
    )
]


@pytest.mark.parametrize(("name", "refusal"), [r for r in UNOPENABLE if "NFKC" not in r[1]])
def test_the_page_api_refuses_the_same_names_with_the_same_words(name, refusal):
    """One rule (app.pages.names) for both: the page API normalises a path to NFKC itself."""
    folder, _, base = name.rpartition("/")
    with pytest.raises(BadRequest, match=re.escape(refusal)):
        if name.endswith(".md"):
            PathRules().clean(name[:-3])
        else:
            PathRules().clean(folder)
            clean_attachment_name(base)


@pytest.mark.parametrize(("files", "lowercase", "refusal"), NAMES)
def test_names_the_wiki_could_not_open_are_refused(
    tmp_path, monkeypatch, files, lowercase, refusal
):
    """Eleventh review: pushed page1.md and Page1.md were both taken, and only one could be
    opened; a pushed Evil.md was listed but answered 404 where the wiki lowercases names."""
    monkeypatch.chdir(tmp_path)
    sha = commit_tree(tmp_path, files)
    problems = push_rules.tree_problems(sha, 10**9, lowercase)
    if refusal is None:
        assert problems == []
    else:
        assert any(refusal in problem for problem in problems), problems


@pytest.mark.parametrize(
    "name",
    [
        *("c:/x.png", "d:", "git~1/x.md", "notes/GIT~1/x.png", "x/.git./y.md", "a/.GIT::$DATA"),
        # Seventeenth review: a file 1,000 folders deep made GitPython's tree writing recurse
        # past Python's limit on every later write (500), and most views with it.
        "z/" * 1000 + "f.txt",
        ".hidden/" * 66 + "f.txt",
        "q/" * 65 + "page.md",
        "long/" + "n" * 1020,
        # Eighteenth review: files under no page whose path starts with '-', which a git
        # command given them without `--` would read as options.
        "--",
        "-dir/x.png",
        "--output=x",
    ],
    ids=lambda name: name if len(name) < 40 else f"{name[:12]}...({len(name)} chars)",
)
def test_no_file_git_reads_as_a_drive_or_as_git_itself_passes(tmp_path, monkeypatch, name):
    """Also where the wiki lists nothing (under no page, hidden): GitPython could no longer
    read the index that holds it, and every later write failed. (git itself refuses the
    `.git` aliases on Linux too, unless core.protectNTFS is off.)"""
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    git = ["git", "-c", "core.protectNTFS=false", "-c", "user.name=Me", "-c", "user.email=m@e"]
    blob = (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin"], input=b"a", capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )
    subprocess.run(
        [*git, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}"], check=True
    )
    subprocess.run([*git, "commit", "-q", "-m", "odd"], check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    problems = push_rules.tree_problems(sha.strip(), 10**9)
    told = ("drive name", "read as '.git'", "at most 65 parts and 1024", "read it as an option")
    assert any(words in p for p in problems for words in told), problems


def test_names_already_in_the_wiki_pass_but_a_new_one_folding_to_them_does_not(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    old = commit_tree(tmp_path, {"cafe\u0301.md": b"a", "a\\b.md": b"b"})
    edit = commit_tree(tmp_path, {"cafe\u0301.md": b"a2", "a\\b.md": b"b2", "new.md": b"c"})
    assert push_rules.tree_problems(edit, 10**9, False, old) == []
    (tmp_path / "cafe\u0301.md").unlink()
    both = commit_tree(tmp_path, {"caf\u00e9.md": b"a", "a\\b.md": b"b2", "new.md": b"c"})
    assert push_rules.tree_problems(both, 10**9, False, edit) == []  # renamed: one name left
    again = commit_tree(tmp_path, {"cafe\u0301.md": b"back"})
    problems = push_rules.tree_problems(again, 10**9, False, both)
    assert any("or in Unicode form" in problem for problem in problems), problems


def test_a_refusal_names_at_most_a_few_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sha = commit_tree(tmp_path, {f"Page{n}.md": b"x" for n in range(50)})
    problems = push_rules.tree_problems(sha, 10**9, True)
    assert len(problems) == push_rules.MAX_NAMES_TOLD + 1
    assert problems[-1] == "... and 30 more names the wiki could not open"


def test_a_page_past_the_page_apis_cap_is_refused(tmp_path, monkeypatch):
    """Thirteenth review: a pushed page of 9.6 MB made each view of its source 12-15 s, and
    six of them killed every worker; the page API takes at most 1 MiB. A pushed page may now
    be no larger; an attachment of that size still goes."""
    monkeypatch.chdir(tmp_path)
    sha = commit_tree(
        tmp_path, {"big.md": b"x" * 101, "small.md": b"x" * 100, "big.bin": b"x" * 101}
    )
    for ref in ("refs/heads/master", "refs/heads/main"):
        subprocess.run(["git", "update-ref", "-d", ref], cwd=tmp_path)
    problems = push_rules.content_problems(sha, 10**9, 100)
    assert len(problems) == 1 and problems[0].startswith(
        "'big.md' is 101 bytes; a page may be at most 100 (as through the page API)"
    )
