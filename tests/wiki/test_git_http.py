"""git clone, pull and push at {slug}.localhost/.git with the real git client, on the real stack.

curl (and so git) resolves every *.localhost name to the loopback address itself.
"""

from __future__ import annotations

import http.client
import io
import os
import socket
import sqlite3
import subprocess
import tarfile
import threading
import time
import zipfile
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.core.locks import wiki_write_lock
from app.core.platform import Platform
from tests.conftest import descendants
from tests.conftest import oauth_grant
from tests.mcp.clients import last_line

pytestmark = pytest.mark.stack

OWNER = ("did:plc:git-owner", "git-owner.test")
OTHER = ("did:plc:git-other", "git-other.test")


def run_git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real git client, never prompting, without the developer's own config."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd or "/nonexistent"),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "Pusher",
        "GIT_AUTHOR_EMAIL": "pusher@example.test",
        "GIT_COMMITTER_NAME": "Pusher",
        "GIT_COMMITTER_EMAIL": "pusher@example.test",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class GitWiki:
    """A wiki on the stack with git access on, its owner's credentials and a viewer token."""

    def __init__(self, stack, slug: str, public: bool = False, git_access: bool = True):
        self.stack, self.slug = stack, slug
        ok(stack.robot("wiki", "create", slug, "--owner", OWNER[0]))
        self.editor = self.token("editor")
        self.viewer = self.token("viewer")
        self.session = last_line(stack.robot("session", OWNER[0]))
        self.api = stack.client("api")
        self.api.headers["Authorization"] = f"Bearer {self.session}"
        answer = self.api.patch(
            f"/api/wikis/{slug}", json={"public": public, "git_access": git_access}
        )
        assert answer.status_code == 200, answer.text
        self.pages = stack.client("otterwiki", host=f"{slug}.localhost")
        self.pages.headers["Authorization"] = f"Bearer {self.editor}"

    def token(self, role: str) -> str:
        return last_line(
            self.stack.robot("token", "create", self.slug, "--user", OWNER[0], "--role", role)
        )

    def url(self, secret: str | None = None, path: str = "/.git") -> str:
        auth = f"anyone:{secret}@" if secret else ""
        return f"http://{auth}{self.slug}.localhost:{self.stack.port('otterwiki')}{path}"

    def clone(self, where: Path, secret: str | None = None) -> subprocess.CompletedProcess:
        return run_git("clone", "-q", self.url(secret), str(where))

    def head(self) -> str:
        repo = self.stack.settings.repo_path(self.slug)
        return ok(run_git("rev-parse", "HEAD", cwd=repo)).strip()


@pytest.fixture(scope="module")
def made(stack):
    ok(stack.robot("user", "add", "--did", OWNER[0], "--handle", OWNER[1]))
    ok(stack.robot("user", "add", "--did", OTHER[0], "--handle", OTHER[1]))
    count = iter(range(1000))
    return lambda **options: GitWiki(stack, f"gitwiki-{next(count)}", **options)


@pytest.fixture(scope="module")
def shared(made):
    return made()


def commit_file(work: Path, name: str, content: bytes | str, message: str = "change") -> None:
    path = work / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    ok(run_git("add", "--", name, cwd=work))
    ok(run_git("commit", "-q", "-m", message, cwd=work))


@pytest.mark.parametrize("who", ["editor", "viewer", "session"])
def test_clone_with_a_token_or_session_as_password(shared, tmp_path, who):
    ok(shared.clone(tmp_path / "w", getattr(shared, who)))
    assert (tmp_path / "w" / "home.md").read_text().startswith("# gitwiki-")


def test_public_wiki_clones_anonymously(made, tmp_path):
    wiki = made(public=True)
    ok(wiki.clone(tmp_path / "w"))
    assert (tmp_path / "w" / "home.md").is_file()


def test_private_wiki_refuses_anonymous_clone_with_a_basic_challenge(shared):
    answer = shared.stack.client("otterwiki", host=f"{shared.slug}.localhost").get(
        "/.git/info/refs", params={"service": "git-upload-pack"}
    )
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize("secret", ["anonymous", "wrong", "other-wiki"])
def test_clone_refused_without_valid_credentials(made, shared, tmp_path, secret):
    credential = {
        "anonymous": None,
        "wrong": "rwt_not-a-real-token",
        "other-wiki": made().editor,
    }[secret]
    done = shared.clone(tmp_path / "w", credential)
    assert done.returncode != 0
    assert "Authentication failed" in done.stderr or "could not read Username" in done.stderr
    assert not (tmp_path / "w" / "home.md").exists()


def test_clone_refused_for_a_non_member(shared, tmp_path):
    stranger = last_line(shared.stack.robot("session", OTHER[0]))
    done = shared.clone(tmp_path / "w", stranger)
    assert done.returncode != 0 and "not a member of this wiki" in done.stderr


def test_git_access_off_is_404_with_a_message(made, tmp_path):
    wiki = made(git_access=False)
    done = wiki.clone(tmp_path / "w", wiki.editor)
    assert done.returncode != 0 and "git access to the wiki" in done.stderr


@pytest.mark.parametrize("public", [False, True])
def test_git_access_off_is_told_only_after_authentication(made, public):
    # A private wiki challenges an anonymous caller (401) whatever git_access is; a public one
    # may say git access is off, as anyone may read it.
    wiki = made(public=public, git_access=False)
    anonymous = wiki.stack.client("otterwiki", host=f"{wiki.slug}.localhost")
    for path in (
        "/.git/info/refs?service=git-upload-pack",
        "/.git/info/refs?service=git-receive-pack",
    ):
        answer = anonymous.get(path)
        if public and "upload" in path:
            assert answer.status_code == 404 and "git access" in answer.text
        else:
            assert answer.status_code == 401 and "git access" not in answer.text
    stranger = made().editor  # a token of another wiki
    answer = anonymous.get(
        "/.git/info/refs?service=git-upload-pack", headers={"Authorization": f"Bearer {stranger}"}
    )
    assert answer.status_code in (401, 403) and "git access" not in answer.text


def test_pull_brings_a_page_api_edit(shared, tmp_path):
    work = tmp_path / "w"
    ok(shared.clone(work, shared.viewer))
    put = shared.pages.put("/api/v1/pages/Pulled", json={"content": "from the API"})
    assert put.status_code in (200, 201), put.text
    ok(run_git("pull", "-q", cwd=work))
    assert (work / "pulled.md").read_text() == "from the API"


def test_push_by_an_editor_shows_at_once(made, tmp_path):
    wiki = made()
    work = tmp_path / "w"
    ok(wiki.clone(work, wiki.editor))
    assert wiki.pages.get("/Home").status_code == 200  # the wiki is open in a worker now
    commit_file(work, "pushed.md", "# Pushed\n\nvia git")
    ok(run_git("push", "-q", "origin", "main", cwd=work))
    page = wiki.pages.get("/api/v1/pages/Pushed")
    assert page.status_code == 200 and "via git" in page.json()["content"]
    assert "via git" in wiki.pages.get("/Pushed").text
    found = wiki.pages.get("/api/v1/search", params={"q": "Pushed"}).json()["results"]
    assert any("Pushed" in str(result) for result in found)
    assert wiki.head() == ok(run_git("rev-parse", "HEAD", cwd=work)).strip()


def test_push_updates_usage_figures(made, tmp_path):
    wiki = made()
    work = tmp_path / "w"
    ok(wiki.clone(work, wiki.editor))
    commit_file(work, "more.md", "x" * 5000)
    ok(run_git("push", "-q", "origin", "main", cwd=work))
    assert wiki.api.get(f"/api/wikis/{wiki.slug}").json()["page_count"] == 3


def test_push_by_a_viewer_is_refused(shared, tmp_path):
    work = tmp_path / "w"
    ok(shared.clone(work, shared.viewer))
    before = shared.head()
    commit_file(work, "viewer.md", "no")
    done = run_git("push", "origin", "main", cwd=work)
    assert done.returncode != 0 and "pushing needs editor" in done.stderr
    assert shared.head() == before


def test_a_read_only_oauth_token_clones_but_cannot_push(shared, tmp_path):
    settings = shared.stack.settings
    platform = Platform.load(settings)
    try:
        grant = oauth_grant(platform.store, OWNER[0], shared.slug, "git-client")
        token = platform.key.mint_access_token(
            OWNER[0], settings.mcp_url(shared.slug), settings.auth_origin, "wiki:read", 300,
            "git-client", grant,
        )  # fmt: skip
    finally:
        platform.store.close()
    work = tmp_path / "w"
    ok(shared.clone(work, token))
    commit_file(work, "agent.md", "no")
    done = run_git("push", "origin", "main", cwd=work)
    assert done.returncode != 0 and "grants read only (wiki:read)" in done.stderr


def test_pushes_stop_when_the_hook_cannot_run(shared, tmp_path):
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    before = shared.head()
    commit_file(work, "unchecked.md", "would skip every push rule")
    hook = shared.stack.settings.data_dir / "git-hooks" / "pre-receive"
    hook.chmod(0o644)  # git would skip it without a word
    try:
        done = run_git("push", "origin", "main", cwd=work)
    finally:
        hook.chmod(0o755)
    assert done.returncode != 0 and "503" in done.stderr
    assert shared.head() == before


def test_push_waits_for_the_write_lock(made, tmp_path):
    wiki = made()
    work = tmp_path / "w"
    ok(wiki.clone(work, wiki.editor))
    commit_file(work, "waited.md", "after the lock")
    before = wiki.head()
    pushed = {}
    with wiki_write_lock(wiki.stack.settings.wiki_dir(wiki.slug)):
        pusher = threading.Thread(
            target=lambda: pushed.update(done=run_git("push", "-q", "origin", "main", cwd=work))
        )
        pusher.start()
        pusher.join(2)
        assert pusher.is_alive() and wiki.head() == before
    pusher.join()
    ok(pushed["done"])
    assert wiki.head() != before


def test_a_push_refused_for_a_busy_wiki_says_why_in_gits_answer(made, tmp_path):
    """Eighteenth review: a push whose wiki's write lock stayed busy past its wait showed only
    "RPC failed; HTTP 503". The refusal now comes in receive-pack's own answer: the reason as
    `remote:` and every ref rejected, with when to try again."""
    wiki = made()
    work = tmp_path / "w"
    ok(wiki.clone(work, wiki.editor))
    commit_file(work, "busy.md", "refused while busy")
    before = wiki.head()
    with wiki_write_lock(wiki.stack.settings.wiki_dir(wiki.slug)):
        done = run_git("push", "origin", "main", cwd=work)
    assert done.returncode != 0
    assert "remote: the wiki is busy with another edit" in done.stderr, done.stderr
    assert "[remote rejected] main -> main (wiki busy, try again in 2 s)" in done.stderr
    assert wiki.head() == before
    ok(run_git("push", "-q", "origin", "main", cwd=work))  # and once free, it lands
    assert wiki.head() != before


def test_a_stalled_push_body_does_not_hold_the_wiki(made):
    """A pusher that sends 4 of 100 000 bytes and stalls holds its worker, not the wiki's write
    lock: the body is read whole before the lock is taken, so other writes go on at once."""
    wiki = made()
    before = wiki.head()
    connection = socket.create_connection(("127.0.0.1", wiki.stack.port("otterwiki")), 30)
    try:
        connection.sendall(
            (
                "POST /.git/git-receive-pack HTTP/1.1\r\n"
                f"Host: {wiki.slug}.localhost\r\n"
                f"Authorization: Bearer {wiki.editor}\r\n"
                "Content-Type: application/x-git-receive-pack-request\r\n"
                "Content-Length: 100000\r\n\r\n0000"
            ).encode()
        )
        time.sleep(1)  # the push is in its worker, waiting for the rest of its body
        started = time.monotonic()
        answer = wiki.pages.put("/api/v1/pages/Meanwhile", json={"content": "not blocked"})
        assert answer.status_code == 201, answer.text
        assert time.monotonic() - started < 5
    finally:
        connection.close()
    assert wiki.head() != before
    # The cut-off body left no file behind in the wiki's folder.
    folder = wiki.stack.settings.wiki_dir(wiki.slug)
    assert not [path.name for path in folder.iterdir() if path.name.startswith(".push-")]


def test_trickled_git_bodies_take_a_slow_place_or_are_cut(made):
    """Sixth review: git's request bodies skipped the slow-body places, so three clients
    sending upload-pack requests at 1 B/s held workers until the worker timeout. Now a
    member's trickled push or fetch takes its pool's one place (a second is refused with 503),
    and an anonymous one is cut at once (408)."""
    wiki = made(public=True)

    def trickle(path: str, token: str | None) -> socket.socket:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        sock = socket.create_connection(("127.0.0.1", wiki.stack.port("otterwiki")), 30)
        head = f"POST /.git/{path} HTTP/1.1\r\nHost: {wiki.slug}.localhost\r\n{auth}"
        sock.sendall(f"{head}Content-Length: 100000\r\n\r\n0000".encode())
        return sock

    def answer_of(sock: socket.socket) -> str:
        return b"".join(iter(lambda: sock.recv(65536), b"")).decode("latin-1")

    holder = trickle("git-receive-pack", wiki.editor)
    try:
        time.sleep(1)  # past the slow-body deadline: it holds its pool's place
        for path in ("git-receive-pack", "git-upload-pack"):
            with trickle(path, wiki.editor) as second:
                answer = answer_of(second)
            assert answer.startswith("HTTP/1.1 503") and "Retry-After: 5" in answer, answer
        with trickle("git-upload-pack", None) as anonymous:
            answer = answer_of(anonymous)
        assert answer.startswith("HTTP/1.1 408") and "may not write" in answer, answer
    finally:
        holder.close()


# Every symlink is refused, inside the repository or not: the first four were once taken, and
# page API writes through them committed nothing and left the working tree dirty.
@pytest.mark.parametrize(
    "links",
    [
        [("loop", ".")],
        [("alias.md", "home.md")],
        [("evil", "real")],  # a link to a folder of pages
        [("dangling.md", "missing-target.md")],
        [("a.md", "b.md"), ("b.md", "c.md"), ("c.md", "home.md")],  # a chain
        [("notes/deep/inner.md", "../../home.md")],
        [("escape.md", "../../../etc/passwd")],
        [("absolute.md", "/etc/passwd")],
        [("config.md", ".git/config")],
    ],
)
def test_push_of_any_symlink_is_refused(shared, tmp_path, links):
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    before = shared.head()
    commit_file(work, "real/page.md", "a page in a folder")
    for name, target in links:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, work / name)
        ok(run_git("add", name, cwd=work))
    ok(run_git("commit", "-q", "-m", "link", cwd=work))
    done = run_git("push", "origin", "main", cwd=work)
    assert done.returncode != 0
    for name, _ in links:
        assert f"symlink {name!r}: a wiki holds no symbolic links" in done.stderr
    assert shared.head() == before
    repo = shared.stack.settings.repo_path(shared.slug)
    assert not any((repo / name).is_symlink() for name, _ in links)
    assert ok(run_git("status", "--porcelain", cwd=repo)) == ""


def test_a_symlink_in_an_earlier_commit_of_the_push_is_refused(shared, tmp_path):
    # Gone at the tip, it would come back with a revert of the later commit in the UI.
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    before = shared.head()
    os.symlink("home.md", work / "alias.md")
    ok(run_git("add", "alias.md", cwd=work))
    ok(run_git("commit", "-q", "-m", "link", cwd=work))
    ok(run_git("rm", "-q", "alias.md", cwd=work))
    ok(run_git("commit", "-q", "-m", "unlink", cwd=work))
    done = run_git("push", "origin", "main", cwd=work)
    assert done.returncode != 0 and "symlink 'alias.md'" in done.stderr
    assert shared.head() == before


def git_input(work: Path, stdin: str, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=work, input=stdin, capture_output=True, text=True)
    return ok(done).strip()


@pytest.mark.parametrize("name", [".git", ".GiT"])
def test_push_of_a_dotgit_path_is_refused(shared, tmp_path, name):
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    before = shared.head()
    # git will not add such a path from a work tree: build the trees by hand, as an attacker can.
    blob = git_input(work, "[core]\n", "hash-object", "-w", "--stdin")
    inner = git_input(work, f"100644 blob {blob}\tconfig\n", "mktree")
    folder = git_input(work, f"040000 tree {inner}\t{name}\n", "mktree")
    listing = ok(run_git("ls-tree", "HEAD", cwd=work)) + f"040000 tree {folder}\tsub\n"
    commit = git_input(
        work, "dotgit", "commit-tree", git_input(work, listing, "mktree"), "-p", "HEAD"
    )
    done = run_git("push", "origin", f"{commit}:refs/heads/main", cwd=work)
    assert done.returncode != 0 and "hasDotgit" in done.stderr, done.stderr
    assert shared.head() == before


@pytest.mark.parametrize(
    "name",
    [
        b"caf\xe9.md",
        b"bad\xff\xfe/page.md",
        b"tab\there.md",
        b"bell\x07.md",
        b"rtl\xe2\x80\xaes.md",
    ],
)
def test_push_of_a_file_name_that_is_no_clean_text_is_refused(shared, tmp_path, name):
    # Latin-1 bytes, control and bidi format characters: Otterwiki and the page API read every
    # name as UTF-8 text, so one such name would break writes to the whole wiki.
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    before = shared.head()
    target = Path(os.fsdecode(bytes(work) + b"/" + name))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"# hostile name\n")
    ok(run_git("add", "-A", cwd=work))
    ok(run_git("commit", "-q", "-m", "name", cwd=work))
    done = run_git("push", "origin", "HEAD:main", cwd=work)
    assert done.returncode != 0 and "file name" in done.stderr, done.stderr
    assert shared.head() == before


def _push_commit(wiki: GitWiki, work: Path, message: str, author: str | None = None):
    ok(wiki.clone(work, wiki.editor))
    (work / "claimed.md").write_text(f"# {message[:20]}\n")
    ok(run_git("add", "-A", cwd=work))
    extra = [f"--author={author}"] if author else []
    ok(run_git("commit", "-q", "-m", message, *extra, cwd=work))
    return run_git("push", "origin", "HEAD:main", cwd=work)


@pytest.mark.parametrize(
    "message",
    [
        "pushed\n\nVia: forged-push (token)\nOn-Behalf-Of: alice.example did:plc:alice",
        "note\n\n\x0bvia : someone",
        "On-Behalf-Of: x did:plc:y",
        # A separator byte of the old log parse hid what came after it from the check.
        "note\x01\n\nVia: forged-push (token)\nOn-Behalf-Of: victim.test did:plc:victim",
        "note\x02\n\nVia: forged-push (token)",
    ],
    ids=["block", "slipped", "first-line", "after-soh", "after-stx"],
)
def test_a_pushed_message_may_not_carry_robots_trailer(shared, tmp_path, message):
    before = shared.head()
    done = _push_commit(shared, tmp_path / "w", message)
    assert done.returncode != 0 and "only robot writes" in done.stderr, done.stderr
    assert shared.head() == before


def test_a_push_may_not_claim_another_persons_robot_address(shared, tmp_path):
    # The reviewer's example: the address history reads as a person's DID (and profile link).
    before = shared.head()
    done = _push_commit(shared, tmp_path / "w", "as alice", "alice <did.plc.alice@localhost>")
    assert done.returncode != 0 and "address of another person" in done.stderr, done.stderr
    assert shared.head() == before


def test_a_push_under_ones_own_robot_address_is_taken(made, tmp_path):
    wiki = made()
    own = f"{OWNER[1]} <{OWNER[0].replace(':', '.')}@localhost>"
    ok(_push_commit(wiki, tmp_path / "w", "my own", own))
    change = wiki.pages.get("/api/v1/changes?limit=1").json()["changes"][0]
    assert (change["did"], change["via"]) == (OWNER[0], None)


@pytest.mark.parametrize(
    ("author", "message", "fields"),
    [
        (b"Ev\xe9 <e@x.org>", b"raw2 \xe9\xff msg\n", "author name, committer name and message"),
        (b"Eve <e\xe9@x.org>", b"fine\n", "author email and committer email"),
        (b"Eve <e@x.org>", b"raw2 \xe9\xff msg\n", "message is"),
    ],
)
def test_a_pushed_commit_that_is_no_utf8_is_refused(shared, tmp_path, author, message, fields):
    """Fourteenth review: such a commit was taken, and the changelog, history, blame and diff
    views answered 500 (UnicodeEncodeError)."""
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    before = shared.head()
    (work / "home.md").write_text("# changed\n")
    ok(run_git("add", "-A", cwd=work))
    tree = ok(run_git("write-tree", cwd=work)).strip()
    ident = author + b" 1796207715 +0000"
    raw = b"tree %s\nparent %s\nauthor %s\ncommitter %s\n\n%s" % (
        tree.encode(),
        before.encode(),
        ident,
        ident,
        message,
    )
    (tmp_path / "commit").write_bytes(raw)
    sha = ok(run_git("hash-object", "-t", "commit", "-w", str(tmp_path / "commit"), cwd=work))
    done = run_git("push", "origin", f"{sha.strip()}:refs/heads/main", cwd=work)
    assert done.returncode != 0 and f"commit {sha[:12]}: its {fields}" in done.stderr, done.stderr
    assert shared.head() == before
    assert shared.pages.get("/-/changelog").status_code == 200


@pytest.mark.parametrize(
    ("name", "content"),
    [("latin1.md", "café au lait\n".encode("latin-1")), ("Sub/UTF16.MD", "# x\n".encode("utf-16"))],
)
def test_push_of_a_page_that_is_no_utf8_text_is_refused(shared, tmp_path, name, content):
    # Otterwiki, the page API and search read pages as UTF-8: such a page was listed, not shown.
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    before = shared.head()
    (work / "fine.md").write_text("# fine, café\n")  # UTF-8 pages in the same push are fine
    path = work / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    ok(run_git("add", "-A", cwd=work))
    ok(run_git("commit", "-q", "-m", "pages", cwd=work))
    done = run_git("push", "origin", "HEAD:main", cwd=work)
    assert done.returncode != 0 and "is not UTF-8 text" in done.stderr, done.stderr
    assert "fine.md" not in done.stderr and shared.head() == before


def test_push_of_utf8_pages_and_binary_attachments_is_taken(made, tmp_path):
    wiki = made()
    work = tmp_path / "w"
    ok(wiki.clone(work, wiki.editor))
    (work / "notes.md").write_text("# Notes — ünïcödé 日本\n")
    (work / "notes").mkdir()
    (work / "notes" / "blob.bin").write_bytes(bytes(range(256)))
    ok(run_git("add", "-A", cwd=work))
    ok(run_git("commit", "-q", "-m", "utf8 and binary", cwd=work))
    ok(run_git("push", "-q", "origin", "HEAD:main", cwd=work))
    assert wiki.pages.get("/api/v1/pages/Notes").status_code == 200


def test_push_of_a_submodule_is_refused(shared, tmp_path):
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    before = shared.head()
    listing = ok(run_git("ls-tree", "HEAD", cwd=work)) + f"160000 commit {before}\tmodule\n"
    commit = git_input(work, "sub", "commit-tree", git_input(work, listing, "mktree"), "-p", "HEAD")
    done = run_git("push", "origin", f"{commit}:refs/heads/main", cwd=work)
    assert done.returncode != 0 and "submodules are not supported" in done.stderr
    assert shared.head() == before


def test_forced_history_rewrite_is_refused(shared, tmp_path):
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    commit_file(work, "rewrite.md", "one")
    ok(run_git("push", "-q", "origin", "main", cwd=work))
    before = shared.head()
    ok(run_git("commit", "-q", "--amend", "-m", "rewritten", cwd=work))
    done = run_git("push", "--force", "origin", "main", cwd=work)
    assert done.returncode != 0 and "rewrites the wiki's history" in done.stderr
    assert shared.head() == before


@pytest.mark.parametrize(
    ("refspec", "reason"),
    [(":main", "deleting main is refused"), ("main:other", "a wiki has one branch")],
)
def test_pushes_to_other_refs_are_refused(shared, tmp_path, refspec, reason):
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    before = shared.head()
    done = run_git("push", "origin", refspec, cwd=work)
    assert done.returncode != 0 and reason in done.stderr
    assert shared.head() == before


def test_push_of_an_existing_repository_imports_it_into_a_new_wiki(made, tmp_path):
    wiki = made()
    old = tmp_path / "old"
    ok(run_git("init", "-q", "-b", "master", str(old)))
    commit_file(old, "home.md", "# Old home", "first")
    commit_file(old, "notes/ideas.md", "ideas", "second")
    # --force: the new wiki's creation commit is not in this history (git says "fetch first").
    ok(run_git("push", "-q", "--force", wiki.url(wiki.editor), "master:main", cwd=old))
    assert wiki.head() == ok(run_git("rev-parse", "HEAD", cwd=old)).strip()
    assert wiki.pages.get("/api/v1/pages/Home").json()["content"] == "# Old home"
    assert not (wiki.stack.settings.repo_path(wiki.slug) / "agent guide.md").exists()


def test_import_is_refused_once_the_wiki_was_written(made, tmp_path):
    wiki = made()
    wiki.pages.put("/api/v1/pages/Mine", json={"content": "written"}).raise_for_status()
    old = tmp_path / "old"
    ok(run_git("init", "-q", "-b", "main", str(old)))
    commit_file(old, "home.md", "# Old home")
    done = run_git("push", "--force", wiki.url(wiki.editor), "main", cwd=old)
    assert done.returncode != 0 and "rewrites the wiki's history" in done.stderr
    assert wiki.pages.get("/api/v1/pages/Mine").status_code == 200


def forced_import(wiki: GitWiki, where: Path, committer: str, message: str):
    """Push --force a new one-commit history to `wiki`, made by `committer` with `message`."""
    ok(run_git("init", "-q", "-b", "main", str(where)))
    (where / "home.md").write_text(f"# {where.name}")
    ok(run_git("add", "home.md", cwd=where))
    ok(run_git("-c", "user.name=robot", "-c", f"user.email={committer}", "commit", "-q",
               "-m", message, cwd=where))  # fmt: skip
    return run_git("push", "--force", wiki.url(wiki.editor), "main", cwd=where)


def test_a_forged_creation_commit_does_not_keep_the_wiki_importable(made, tmp_path):
    # The reviewer's example: a root commit with the creation commit's committer and message.
    wiki = made()
    robot = f"robot@{wiki.stack.settings.platform_domain}"
    ok(forced_import(wiki, tmp_path / "forged", robot, "Create wiki"))  # the one import
    imported = wiki.head()
    done = forced_import(wiki, tmp_path / "again", robot, "Create wiki")
    assert done.returncode != 0 and "rewrites the wiki's history" in done.stderr
    assert wiki.head() == imported


@pytest.mark.parametrize("refspec", ["main:refs/robot/created", ":refs/robot/created"])
def test_the_creation_record_cannot_be_pushed_to(made, tmp_path, refspec):
    wiki = made()
    repo = wiki.stack.settings.repo_path(wiki.slug)
    created = ok(run_git("rev-parse", "refs/robot/created", cwd=repo))
    work = tmp_path / "w"
    ok(wiki.clone(work, wiki.editor))
    assert "refs/robot" not in ok(run_git("ls-remote", "origin", cwd=work))
    commit_file(work, "other.md", "other")
    assert run_git("push", "origin", refspec, cwd=work).returncode != 0
    assert ok(run_git("rev-parse", "refs/robot/created", cwd=repo)) == created


def test_a_wiki_without_a_creation_record_is_not_importable(made, tmp_path):
    # As a wiki made before the record was kept: nothing says its history is only the creation.
    wiki = made()
    repo = wiki.stack.settings.repo_path(wiki.slug)
    ok(run_git("update-ref", "-d", "refs/robot/created", cwd=repo))
    before = wiki.head()
    done = forced_import(wiki, tmp_path / "old", "me@example.test", "first")
    assert done.returncode != 0 and "rewrites the wiki's history" in done.stderr
    assert wiki.head() == before


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_export_has_every_file_at_head(shared, fmt):
    answer = shared.pages.get("/api/v1/export", params={"format": fmt})
    assert answer.status_code == 200, answer.text
    name = f"{shared.slug}-{shared.head()[:12]}"
    assert f'filename="{name}.{fmt}"' in answer.headers["Content-Disposition"]
    if fmt == "zip":
        names = zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
    else:
        names = tarfile.open(fileobj=io.BytesIO(answer.content)).getnames()
    assert f"{name}/home.md" in names and f"{name}/agent guide.md" in names


@pytest.mark.parametrize(
    "attributes",
    [
        "* export-ignore\n",  # the reviewer's example: the zip was empty
        "*.md export-subst\n",  # $Format:%H$ became the commit id
        "*.md ident text eol=crlf\n",  # $Id$ expanded, line endings rewritten
    ],
)
def test_the_export_ignores_the_wikis_own_gitattributes(made, attributes):
    # Pushes refuse .gitattributes now; a wiki may hold one from before.
    wiki = made()
    repo = wiki.stack.settings.repo_path(wiki.slug)
    home = "# Home $Format:%H$ $Id$\nline\n"
    (repo / "home.md").write_text(home)
    (repo / ".gitattributes").write_text(attributes)
    ok(run_git("add", "home.md", ".gitattributes", cwd=repo))
    ok(run_git("commit", "-q", "-m", "attributes from before", cwd=repo))
    answer = wiki.pages.get("/api/v1/export", params={"format": "zip"})
    assert answer.status_code == 200, answer.text
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    name = f"{wiki.slug}-{wiki.head()[:12]}"
    assert {f"{name}/home.md", f"{name}/agent guide.md", f"{name}/.gitattributes"} <= set(
        archive.namelist()
    )
    assert archive.read(f"{name}/home.md").decode() == home


@pytest.mark.parametrize(
    "name", [".gitattributes", "notes/.gitattributes", ".gitmodules", ".mailmap", ".gitignore"]
)
def test_push_of_git_settings_files_is_refused(shared, tmp_path, name):
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    before = shared.head()
    commit_file(work, name, "* export-ignore\n")
    done = run_git("push", "origin", "main", cwd=work)
    assert done.returncode != 0
    assert "holds no .gitattributes, .gitmodules, .gitignore or .mailmap" in done.stderr
    assert shared.head() == before


def test_pushed_names_the_wiki_could_not_open_are_refused_as_its_setting_says(made, tmp_path):
    """Eleventh review: a pushed Evil.md was listed but answered 404 where the wiki lowercases
    page names (Otterwiki's default), and page1.md beside Page1.md left one unopenable. The
    push rules read the wiki's own RETAIN_PAGE_NAME_CASE."""
    wiki = made()
    work = tmp_path / "w"
    ok(wiki.clone(work, wiki.editor))
    before = wiki.head()
    commit_file(work, "Evil.md", "# Evil\n\nshouted\n")
    done = run_git("push", "origin", "main", cwd=work)
    assert done.returncode != 0 and "name it 'evil.md'" in done.stderr, done.stderr
    assert wiki.head() == before
    # The owner keeps names' case in the wiki's settings (a row of its wiki.db, as the admin
    # form saves it): the same push is taken, and the page opens.
    assert wiki.pages.get("/Home").status_code == 200  # wiki.db's tables are made
    database = sqlite3.connect(wiki.stack.settings.wiki_db_path(wiki.slug))
    with closing(database), database:
        database.execute(
            "INSERT INTO preferences (name, value) VALUES ('RETAIN_PAGE_NAME_CASE', 'True')"
        )
    ok(run_git("push", "-q", "origin", "main", cwd=work))
    assert "shouted" in wiki.pages.get("/Evil").text
    commit_file(work, "evil.md", "# evil\n\nquiet\n")
    done = run_git("push", "origin", "main", cwd=work)
    assert done.returncode != 0 and "differ only in case" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("names", "refusal"),
    [
        (["caf\u00e9.md", "cafe\u0301.md"], "or in Unicode form"),
        (["cafe\u0301.md"], "not in Unicode NFKC form"),
        (["a\\b.md"], "page path must not contain \\"),
        (["notes/v1.2.md"], "page path must not contain ."),
    ],
)
def test_pushed_names_the_page_api_would_refuse_are_refused(shared, tmp_path, names, refusal):
    """Fourteenth review: café.md in both Unicode forms was taken and one never opened, and a
    pushed a\\b.md was listed while the wiki answered 404 and the page API 400."""
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    before = shared.head()
    for name in names:
        commit_file(work, name, f"# {name}\n")
    done = run_git("push", "origin", "HEAD:main", cwd=work)
    assert done.returncode != 0 and refusal in done.stderr, done.stderr
    assert shared.head() == before


def test_a_mailmap_from_before_the_rule_changes_no_history(made):
    """Tenth review: an editor's pushed .mailmap showed the editor's commits as the owner's
    (and the owner's as the editor's) in the page API, the changelog and its feed. One that
    came before the rule (committed here directly) is ignored."""
    wiki = made()
    repo = wiki.stack.settings.repo_path(wiki.slug)
    mapped = f"{OWNER[1]} <did.plc.git-owner@localhost> Pusher <pusher@example.test>\n"
    (repo / ".mailmap").write_text(mapped)
    with wiki_write_lock(wiki.stack.settings.wiki_dir(wiki.slug)):
        ok(run_git("add", ".mailmap", cwd=repo))
        ok(run_git("commit", "-q", "-m", "a mailmap", cwd=repo))
    changes = wiki.pages.get("/api/v1/changes").json()["changes"]
    assert changes[0]["author"] == "Pusher" and changes[0]["did"] is None, changes[0]
    history = wiki.pages.get("/-/changelog").text
    assert "Pusher" in history


def raw_push(wiki, body: bytes, **headers: str) -> http.client.HTTPResponse:
    """POST `body` to the wiki's git-receive-pack as its editor; the answer, read."""
    connection = http.client.HTTPConnection("127.0.0.1", wiki.stack.port("otterwiki"), timeout=60)
    connection.request(
        "POST",
        "/.git/git-receive-pack",
        body=body,
        headers={
            "Host": f"{wiki.slug}.localhost",
            "Authorization": f"Bearer {wiki.editor}",
            "Content-Type": "application/x-git-receive-pack-request",
            **headers,
        },
    )
    answer = connection.getresponse()
    answer.text = answer.read().decode("utf-8", "replace")
    connection.close()
    return answer


def updates(wiki, count: int) -> bytes:
    """`count` ref updates of main from its head to itself, then an empty pack."""
    head = wiki.head()
    lines = [f"{head} {head} refs/heads/main\0report-status\n"]
    lines += [f"{head} {head} refs/heads/main\n"] * (count - 1)
    packed = b"".join(f"{len(line) + 4:04x}{line}".encode() for line in lines)
    return packed + b"0000" + b"PACK\x00\x00\x00\x02\x00\x00\x00\x00" + bytes(20)


@pytest.mark.parametrize("count", [33, 5000])
def test_a_flood_of_ref_updates_is_refused_before_git_runs(made, count):
    """Tenth review: thousands of no-op updates of main held a worker and the wiki's write
    lock past the worker timeout (the push rules ran three git processes for each)."""
    wiki = made()
    before = wiki.head()
    answer = raw_push(wiki, updates(wiki, count))
    assert answer.status == 400 and "updates more than 32 refs" in answer.text, answer.text
    assert wiki.head() == before


def test_a_compressed_push_is_refused(made):
    """git never compresses a push; inflated, 1,231 bytes carried 3,000 ref updates."""
    wiki = made()
    import gzip

    answer = raw_push(wiki, gzip.compress(updates(wiki, 1)), **{"Content-Encoding": "gzip"})
    assert answer.status == 400 and "uncompressed" in answer.text


def test_a_gzipped_fetch_still_works(shared, tmp_path):
    """git gzips a fetch's request once it has many `have` lines: inflated here, capped."""
    work = tmp_path / "w"
    ok(shared.clone(work, shared.editor))
    for n in range(40):  # enough haves for git to gzip its next request
        commit_file(work, f"local-{n}.md", f"# {n}\n", f"local {n}")
    put = shared.pages.put("/api/v1/pages/Remote", json={"content": "# Remote\n"})
    assert put.status_code in (200, 201), put.text
    ok(run_git("fetch", "-q", "origin", cwd=work))
    assert "Remote" in ok(run_git("show", "origin/main:remote.md", cwd=work))


def test_an_inflated_fetch_request_has_a_cap(shared):
    """Tenth review: a few MB of gzip held tens of millions of `have` lines, and upload-pack
    spent half a minute of CPU on them. Past _UPLOAD_REQUEST_MAX inflated, git sees the
    request end and refuses it."""
    import gzip

    from app.wiki.git_http import _UPLOAD_REQUEST_MAX

    head = shared.head()
    line = f"0032have {head}\n".encode()
    body = f"0032want {head}\n".encode() + line * (_UPLOAD_REQUEST_MAX // len(line) + 10)
    connection = http.client.HTTPConnection("127.0.0.1", shared.stack.port("otterwiki"), timeout=60)
    connection.request(
        "POST",
        "/.git/git-upload-pack",
        body=gzip.compress(body + b"0009done\n"),
        headers={
            "Host": f"{shared.slug}.localhost",
            "Authorization": f"Bearer {shared.editor}",
            "Content-Type": "application/x-git-upload-pack-request",
            "Content-Encoding": "gzip",
        },
    )
    answer = connection.getresponse()
    text = answer.read()
    connection.close()
    assert b"PACK" not in text  # no pack was made of it
    assert shared.stack.unhealthy() == []


def test_a_public_wiki_exports_anonymously(made):
    wiki = made(public=True)
    anonymous = wiki.stack.client("otterwiki", host=f"{wiki.slug}.localhost")
    answer = anonymous.get("/api/v1/export")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/zip"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/export"), ("PUT", "/api/v1/export"), ("POST", "/api/v1/changes"),
     ("DELETE", "/api/v1/orphans")],
)  # fmt: skip
def test_a_page_api_path_with_the_wrong_method_is_405(shared, method, path):
    answer = shared.pages.request(method, path)
    assert answer.status_code == 405, answer.text
    assert answer.json()["error"]


def test_export_refuses_an_unknown_format_and_anonymous_callers(shared):
    assert shared.pages.get("/api/v1/export", params={"format": "rar"}).status_code == 400
    anonymous = shared.stack.client("otterwiki", host=f"{shared.slug}.localhost")
    assert anonymous.get("/api/v1/export").status_code == 401


def raw_get(wiki: GitWiki, path: str, secret: str) -> tuple[int, str, bytes]:
    """GET `path` exactly as spelled (no client normalises it): (status, content type, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", wiki.stack.port("otterwiki"), timeout=30)
    try:
        headers = {"Host": f"{wiki.slug}.localhost", "Authorization": f"Bearer {secret}"}
        connection.request("GET", path, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type", ""), answer.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "path",
    [
        "/.git",
        "/.git/HEAD",
        "/.git/config",
        "/.git/objects/info/packs",
        "/.git/info/refs",
        "/.git/info/refs?service=git-upload-archive",
        "/.git/info/refs?service=git-upload-pack&service=git-receive-pack",
        "/.git//info/refs?service=git-upload-pack",
        "/.git/./info/refs?service=git-upload-pack",
        "/.git/info/../info/refs?service=git-upload-pack",
        "/.git/info/refs/?service=git-upload-pack",
        "/.GIT/info/refs?service=git-upload-pack",
        "/x/../.git/config",
        "/.git/git-upload-pack",
    ],
)
def test_dumb_and_hostile_paths_under_dotgit_are_404(shared, path):
    status, _, body = raw_get(shared, path, shared.editor)
    assert status == 404, body
    assert b"[core]" not in body and b"ref: refs/heads" not in body


@pytest.mark.parametrize(
    "path", ["/.git/info/refs?service=git-upload-pack", "//.git/info/refs?service=git-upload-pack"]
)
def test_smart_refs_are_served_on_the_route_flask_would_run(shared, path):
    status, kind, _ = raw_get(shared, path, shared.viewer)
    assert (status, kind) == (200, "application/x-git-upload-pack-advertisement")


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    """A stack of its own whose pushes may be at most 200 000 bytes."""
    from tests.conftest import Stack

    instance = Stack(tmp_path_factory.mktemp("capped"), ROBOT_GIT_PUSH_MAX_BYTES="200000")
    instance.start()
    ok(instance.robot("user", "add", "--did", OWNER[0], "--handle", OWNER[1]))
    yield SimpleNamespace(stack=instance, count=iter(range(100)))
    instance.stop()


# git sends a body under its http.postBuffer (1 MiB) with its length, a larger one chunked:
# the first is refused at once, the second cut once the cap is passed while it streams.
@pytest.mark.parametrize("size", [400_000, 1_500_000])
def test_push_over_the_size_cap_is_refused(capped, tmp_path, size):
    wiki = GitWiki(capped.stack, f"cap-{next(capped.count)}")
    work = tmp_path / "w"
    ok(wiki.clone(work, wiki.editor))
    before = wiki.head()
    commit_file(work, "big.bin", os.urandom(size))
    done = run_git("push", "origin", "main", cwd=work)
    # git shows why (once "RPC failed; HTTP 413" and then "Everything up-to-date").
    assert done.returncode != 0
    assert "remote: push refused: it is larger than 200000 bytes" in done.stderr
    assert "[remote rejected] main -> main (push over 200000 bytes)" in done.stderr
    assert "Everything up-to-date" not in done.stderr
    assert wiki.head() == before
    objects = capped.stack.settings.repo_path(wiki.slug) / ".git" / "objects"
    assert not list(objects.glob("tmp_objdir-incoming-*"))


def test_a_push_declaring_far_more_than_the_cap_is_refused_at_once(capped):
    wiki = GitWiki(capped.stack, f"cap-{next(capped.count)}")
    connection = http.client.HTTPConnection("127.0.0.1", capped.stack.port("otterwiki"), timeout=30)
    try:
        headers = {
            "Host": f"{wiki.slug}.localhost",
            "Authorization": f"Bearer {wiki.editor}",
            "Content-Type": "application/x-git-receive-pack-request",
            "Content-Length": str(10**9),
        }
        connection.putrequest("POST", "/.git/git-receive-pack", skip_host=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(b"0000")
        answer = connection.getresponse()
        assert answer.status == 413
        assert b"larger than 200000 bytes" in answer.read()
    finally:
        connection.close()


def test_file_over_the_size_cap_is_refused_even_when_it_packs_small(capped, tmp_path):
    wiki = GitWiki(capped.stack, f"cap-{next(capped.count)}")
    work = tmp_path / "w"
    ok(wiki.clone(work, wiki.editor))
    before = wiki.head()
    commit_file(work, "zeros.bin", bytes(1_000_000))
    done = run_git("push", "origin", "main", cwd=work)
    assert done.returncode != 0 and "a file may be at most 200000" in done.stderr
    assert wiki.head() == before


# Kept last in the module: the crowd leaves its pool (the anonymous readers of OWNER's wikis) a
# few seconds of debt, which the test waits out before it ends.
def test_a_crowd_of_anonymous_clones_never_holds_every_worker(made, tmp_path):
    """Fifth review: five anonymous clone loops on one public wiki took no turn and held every
    worker; other tenants' views took 14-16 s. Clones now take turns of their caller's pool
    once the caller is known: the crowd is refused (with a Basic challenge, so that git sends
    credentials if it has them), while the owner clones and pushes, and another owner's wiki
    answers, throughout."""
    from app.wiki.turns import DEBT_MAX

    wiki = made(public=True)
    work = tmp_path / "seed"
    ok(wiki.clone(work, wiki.editor))
    for n in range(20):  # something for git to pack
        commit_file(work, f"page{n}.md", os.urandom(64 * 1024).hex(), f"page {n}")
    ok(run_git("push", "-q", "origin", "HEAD:main", cwd=work))
    stack = wiki.stack
    ok(stack.robot("wiki", "create", "gitcrowd-other", "--owner", OTHER[0], "--public"))

    stop = threading.Event()
    crowd: list[subprocess.CompletedProcess] = []

    def clone_loop(n: int) -> None:
        for round_ in range(1000):
            if stop.is_set():
                return
            crowd.append(wiki.clone(tmp_path / f"crowd-{n}-{round_}"))

    loops = [threading.Thread(target=clone_loop, args=(n,)) for n in range(5)]
    for loop in loops:
        loop.start()
    try:
        time.sleep(2)  # the crowd is at it
        other = stack.client("otterwiki", host="gitcrowd-other.localhost")
        views = [other.get("/").status_code for _ in range(10)]
        for n in range(3):
            ok(wiki.clone(tmp_path / f"owner-{n}", wiki.editor))
        commit_file(tmp_path / "owner-0", "owner.md", "# Owner\n", "the owner, in the crowd")
        ok(run_git("push", "-q", "origin", "HEAD:main", cwd=tmp_path / "owner-0"))
    finally:
        stop.set()
        for loop in loops:
            loop.join()
    assert views == [200] * 10
    refused = [done for done in crowd if done.returncode != 0]
    assert refused, "the crowd was never refused"
    for done in refused:  # git, challenged, has no password to give
        assert "could not read Username" in done.stderr, done.stderr
    assert any(done.returncode == 0 for done in crowd)  # turn by turn, the crowd clones too
    time.sleep(DEBT_MAX + 0.1)
    ok(wiki.clone(tmp_path / "after"))  # one client's info/refs, then upload-pack


def _serving(stack, command: str) -> int | None:
    """The pid of the wiki service's worker under which a process runs `command`, or None."""
    for worker in descendants(stack.pid("otterwiki")):
        for pid in descendants(worker):
            try:
                if (
                    command
                    in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                ):
                    return worker
            except OSError:
                continue
    return None


def test_a_push_whose_worker_is_killed_keeps_the_wiki_locked_until_git_ends(made, tmp_path):
    """Tenth review: a push outlived its worker (killed on timeout or reload); git went on
    outside the write lock the worker had held, and undid the owner's next edit. Now git
    holds the lock itself (the descriptor, inherited): the next write waits for it."""
    wiki = made()
    work = tmp_path / "w"
    ok(wiki.clone(work, wiki.editor))
    commit_file(work, "pushed.md", "# Pushed\n")
    hooks = wiki.stack.settings.data_dir / "git-hooks"
    started, slept = tmp_path / "started", tmp_path / "slept"
    (hooks / "pre-receive.real").write_bytes((hooks / "pre-receive").read_bytes())
    (hooks / "pre-receive.real").chmod(0o755)
    wrapper = f"#!/bin/sh\ntouch {started}\nsleep 4\ntouch {slept}\nexec {hooks}/pre-receive.real\n"
    (hooks / ".wrapper").write_text(wrapper)
    (hooks / ".wrapper").chmod(0o755)
    (hooks / ".wrapper").replace(hooks / "pre-receive")
    try:
        pusher = threading.Thread(
            target=run_git, args=("push", "-q", "origin", "main"), kwargs={"cwd": work}
        )
        pusher.start()
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = _serving(wiki.stack, "http-backend")
        assert started.exists() and worker, "the push did not reach its hook"
        os.kill(worker, 9)
        put = wiki.pages.put("/api/v1/pages/After", json={"content": "# After\n"})
        assert put.status_code == 201, put.text
        assert slept.exists(), "the write went in while the push's git still ran"
        pusher.join(timeout=60)
    finally:
        from app.wiki.git_http import install_hook

        install_hook(hooks)
        (hooks / "pre-receive.real").unlink(missing_ok=True)
    repo = wiki.stack.settings.repo_path(wiki.slug)
    assert ok(run_git("status", "--porcelain", cwd=repo)) == ""
    assert wiki.pages.get("/api/v1/pages/After").status_code == 200
    wiki.stack.wait_healthy(60)


def test_a_pushs_automatic_gc_ends_within_the_push(made, tmp_path):
    """Eleventh review: git's automatic gc after a push ran detached, in a session of its own:
    past the push's end, holding the wiki's lock it had inherited, at nice 0, uncounted. It
    now runs inside the push (gc.autoDetach=false, over the wiki's own setting): when the
    client's push returns, gc has packed the wiki and no git runs on in it."""
    wiki = made()
    repo = wiki.stack.settings.repo_path(wiki.slug)
    # Every push is kept as a pack, and two packs call for gc; the wiki asks for detaching.
    for key, value in (("receive.unpackLimit", "1"), ("gc.autoPackLimit", "1")):
        ok(run_git("config", key, value, cwd=repo))
    ok(run_git("config", "gc.autoDetach", "true", cwd=repo))
    work = tmp_path / "w"
    ok(wiki.clone(work, wiki.editor))
    packs = repo / ".git" / "objects" / "pack"
    for n in range(3):
        commit_file(work, f"page{n}.md", f"# Page {n}\n" + "text " * 2000)
        ok(run_git("push", "-q", "origin", "main", cwd=work))
        assert len(list(packs.glob("*.pack"))) == 1, f"gc had not packed push {n} when it ended"
        assert not _housekeeping_in(repo), "git's gc ran on in the wiki after the push ended"


# What git's gc runs (gc, maintenance, repack, pack-objects, prune); the worker's kept
# `cat-file --batch` processes also work in the repository, between requests.
_HOUSEKEEPING = {"gc", "maintenance", "repack", "pack-objects", "prune", "reflog"}


def _housekeeping_in(repo: Path) -> list[str]:
    """The command lines of git housekeeping processes anywhere on the host working in `repo`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")).is_relative_to(repo):
                words = (entry / "cmdline").read_bytes().decode().split("\0")
                if _HOUSEKEEPING & set(words):
                    found.append(" ".join(words))
        except OSError:
            continue
    return found
