"""The page API over HTTP against the real stack: every route, the roles, bad input, 20 writers."""

import subprocess
import threading
import time
from functools import partial
from types import SimpleNamespace

import httpx2
import pytest
from otterwiki.gitstorage import GitStorage

from app.core.signing import SigningKey
from app.core.store import Store
from app.core.wikis import create_wiki

pytestmark = pytest.mark.stack

OWNER = ("did:plc:pga-owner", "pga-owner.test")
EDITOR = ("did:plc:pga-editor", "pga-editor.test")
VIEWER = ("did:plc:pga-viewer", "pga-viewer.test")
STRANGER = ("did:plc:pga-stranger", "pga-stranger.test")
ALPHA, BETA, PUBLIC = "pga-alpha", "pga-beta", "pga-public"
WRITERS = 20


@pytest.fixture(scope="module")
def world(stack):
    """Two private wikis; owner, editor and viewer tokens in alpha; a session for a stranger."""
    store = Store(stack.settings.database_url)
    for did, handle in (OWNER, EDITOR, VIEWER, STRANGER):
        store.upsert_user(did, handle)
    for slug in (ALPHA, BETA):
        create_wiki(stack.settings, store, slug, OWNER[0])
    create_wiki(stack.settings, store, PUBLIC, OWNER[0], public=True)
    store.set_member(ALPHA, EDITOR[0], "editor")
    store.set_member(ALPHA, VIEWER[0], "viewer")
    tokens = {
        name: store.create_token(ALPHA, did, role)[1]
        for name, did, role in (
            ("owner", OWNER[0], "admin"),
            ("editor", EDITOR[0], "editor"),
            ("viewer", VIEWER[0], "viewer"),
        )
    }
    revoked, secret = store.create_token(ALPHA, EDITOR[0], "editor")
    store.revoke_token(revoked.id)
    key = SigningKey.load(stack.settings.signing_key_path)
    stranger = key.mint_session(*STRANGER, stack.settings.auth_origin, 3600)
    yield SimpleNamespace(store=store, tokens=tokens, revoked=secret, stranger=stranger)
    store.close()


def client(stack, slug=ALPHA, bearer=None) -> httpx2.Client:
    c = stack.client("otterwiki", host=stack.settings.wiki_host(slug))
    if bearer:
        c.headers["Authorization"] = f"Bearer {bearer}"
    return c


@pytest.fixture(scope="module")
def editor(stack, world):
    return client(stack, bearer=world.tokens["editor"])


@pytest.fixture(scope="module")
def owner(stack, world):
    return client(stack, bearer=world.tokens["owner"])


@pytest.fixture(scope="module")
def viewer(stack, world):
    return client(stack, bearer=world.tokens["viewer"])


def git_revisions(stack, slug=ALPHA) -> set[str]:
    out = subprocess.run(
        ["git", "log", "--format=%H"],
        cwd=stack.settings.repo_path(slug),
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_whoami(editor):
    body = editor.get("/api/v1/whoami").json()
    assert body["wiki"] == ALPHA and body["role"] == "editor" and body["via"] == "token"
    assert body["did"] == EDITOR[0] and "WRITE" in body["permissions"]


def test_write_read_update(editor):
    created = editor.put("/api/v1/pages/E2E/Plan", json={"content": "one\n", "message": "m1"})
    assert created.status_code == 201 and created.json()["created"] is True
    page = editor.get("/api/v1/pages/e2e/plan").json()
    assert page["content"] == "one\n" and page["revision"] == created.json()["revision"]
    assert page["author"] == EDITOR[1]
    updated = editor.put("/api/v1/pages/E2E/Plan", json={"content": "two\n"})
    assert updated.status_code == 200 and updated.json()["created"] is False


def test_read_old_revision_and_history(editor):
    first = editor.put("/api/v1/pages/hist", json={"content": "v1", "message": "first"}).json()
    editor.put("/api/v1/pages/hist", json={"content": "v2", "message": "second"})
    old = editor.get("/api/v1/pages/hist", params={"revision": first["revision"]}).json()
    history = editor.get("/api/v1/pages/hist/history", params={"limit": 5}).json()
    assert old["content"] == "v1"
    assert [r["message"] for r in history["revisions"]] == ["second", "first"]


def test_stale_base_revision_is_409(editor):
    first = editor.put("/api/v1/pages/stale", json={"content": "a"}).json()
    second = editor.put("/api/v1/pages/stale", json={"content": "b"}).json()
    response = editor.put(
        "/api/v1/pages/stale", json={"content": "c", "base_revision": first["revision"]}
    )
    assert response.status_code == 409
    assert response.json()["current_revision"] == second["revision"] and response.json()["error"]


def test_stale_base_revision_with_changes_elsewhere_is_merged(editor, owner):
    base = "# Merge\n\ntop\n\nmiddle\n\nbottom\n"
    first = editor.put("/api/v1/pages/merge", json={"content": base}).json()
    theirs = owner.put(
        "/api/v1/pages/merge", json={"content": base.replace("bottom", "bottom by owner")}
    ).json()
    response = editor.put(
        "/api/v1/pages/merge",
        json={"content": base.replace("top", "top by editor"), "base_revision": first["revision"]},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["merged"] is True and answer["merged_over"] == theirs["revision"]
    assert answer["merged_authors"] == [OWNER[1]]
    page = editor.get("/api/v1/pages/merge").json()
    assert page["revision"] == answer["revision"]
    assert "top by editor" in page["content"] and "bottom by owner" in page["content"]


def test_stale_base_revision_overlapping_is_409_with_details_and_no_commit(stack, editor, owner):
    first = editor.put("/api/v1/pages/overlap", json={"content": "one\ntwo\n"}).json()
    theirs = owner.put("/api/v1/pages/overlap", json={"content": "one\nTWO\n"}).json()
    revisions = git_revisions(stack)
    response = editor.put(
        "/api/v1/pages/overlap",
        json={"content": "one\n<b>2</b>\n", "base_revision": first["revision"]},
    )
    assert response.status_code == 409
    answer = response.json()
    assert answer["current_revision"] == theirs["revision"]
    assert answer["current_content"] == "one\nTWO\n" and "nothing was written" in answer["error"]
    assert answer["conflict"]["yours"] == "one\n<b>2</b>\n"
    assert "-TWO\n+<b>2</b>\n" in answer["conflict"]["diff"]
    assert (
        "<<<<<<< yours\n<b>2</b>\n=======\nTWO\n>>>>>>> current"
        in (answer["conflict"]["with_markers"])
    )
    assert editor.get("/api/v1/pages/overlap").json()["content"] == "one\nTWO\n"
    assert git_revisions(stack) == revisions


def test_list_search_changes(editor):
    editor.put("/api/v1/pages/listing/alpha", json={"content": "The quick Otter jumps"})
    pages = editor.get("/api/v1/pages", params={"prefix": "Listing/"}).json()["pages"]
    assert [p["path"] for p in pages] == ["Listing/Alpha"] and pages[0]["size"] == 21
    results = editor.get("/api/v1/search", params={"q": "quick otter"}).json()["results"]
    assert results[0]["path"] == "Listing/Alpha" and "Otter" in results[0]["snippets"][0]
    change = editor.get("/api/v1/changes", params={"limit": 1}).json()["changes"][0]
    assert change["paths"] == ["Listing/Alpha"] and change["author"] == EDITOR[1]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"limit": "0"}, "limit must be between 1 and 1000"),
        ({"limit": "x"}, "limit must be a whole number"),
        ({"limit": "2", "after": "x" * 501}, "after must be a string of at most 500"),
    ],
)
def test_listing_pages_a_few_at_a_time(editor, params, error):
    for name in ("c", "a", "b"):
        editor.put(f"/api/v1/pages/paging/{name}", json={"content": "x"})
    first = editor.get("/api/v1/pages", params={"prefix": "Paging/", "limit": 2}).json()
    assert [p["path"] for p in first["pages"]] == ["Paging/A", "Paging/B"]
    assert first["next"] == "Paging/B"
    rest = editor.get(
        "/api/v1/pages", params={"prefix": "Paging/", "limit": 2, "after": first["next"]}
    ).json()
    assert rest == {"pages": rest["pages"]} and [p["path"] for p in rest["pages"]] == ["Paging/C"]
    # Thirteenth review: `after` in another case (the file's) ended the listing early.
    folded = editor.get("/api/v1/pages", params={"prefix": "Paging/", "after": "paging/a"})
    assert [p["path"] for p in folded.json()["pages"]] == ["Paging/B", "Paging/C"]
    refused = editor.get("/api/v1/pages", params={"prefix": "Paging/", **params})
    assert refused.status_code == 400 and error in refused.json()["error"]


def test_links_backlinks_orphans(editor):
    editor.put("/api/v1/pages/links/a", json={"content": "see [[Links/B]] and [[Links/Gone]]"})
    editor.put("/api/v1/pages/links/b", json={"content": "no links"})
    links = editor.get("/api/v1/pages/links/b/links").json()
    assert links["backlinks"] == ["Links/A"] and links["outgoing"] == []
    assert "Links/Gone" in editor.get("/api/v1/pages/links/a/links").json()["missing"]
    assert "Links/A" in editor.get("/api/v1/orphans").json()["pages"]


def test_rename_with_link_update_and_delete(editor):
    editor.put("/api/v1/pages/ren/old", json={"content": "x"})
    editor.put("/api/v1/pages/ren/ref", json={"content": "[[Ren/Old]]"})
    response = editor.post(
        "/api/v1/pages/ren/old/rename", json={"to": "Ren/New", "update_links": True}
    )
    assert response.status_code == 200 and response.json()["updated_pages"] == ["Ren/Ref"]
    assert editor.get("/api/v1/pages/ren/ref").json()["content"] == "[[Ren/New]]"
    deleted = editor.delete("/api/v1/pages/ren/new")
    assert deleted.status_code == 200
    assert editor.get("/api/v1/pages/ren/new").status_code == 404


def test_attachments(stack, editor):
    editor.put("/api/v1/pages/files", json={"content": "has a file"})
    repo = stack.settings.repo_path(ALPHA)
    (repo / "files").mkdir()
    (repo / "files" / "data.csv").write_text("a,b\n1,2\n")
    GitStorage(str(repo)).commit(["files/data.csv"], "attach", ("t", "t@localhost"))
    listed = editor.get("/api/v1/pages/files/attachments").json()["attachments"]
    assert listed[0]["name"] == "data.csv" and listed[0]["mime"] == "text/csv"
    raw = editor.get("/api/v1/pages/files/attachments/data.csv")
    assert raw.content == b"a,b\n1,2\n" and raw.headers["content-type"].startswith("text/csv")


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("PUT", "/api/v1/pages/viewer-page", {"content": "x"}),
        ("DELETE", "/api/v1/pages/home", None),
        ("POST", "/api/v1/pages/home/rename", {"to": "elsewhere"}),
    ],
)
def test_viewer_cannot_write(viewer, method, url, body):
    response = viewer.request(method, url, json=body)
    assert response.status_code == 403
    assert "your role in this wiki is viewer" in response.json()["error"]


def test_viewer_reads(viewer):
    assert viewer.get("/api/v1/pages/home").status_code == 200


def test_stranger_session_is_403(stack, world):
    response = client(stack, bearer=world.stranger).get("/api/v1/pages/home")
    assert response.status_code == 403
    assert "not a member of this wiki" in response.json()["error"]


@pytest.mark.parametrize("who", ["anonymous", "alpha token on beta", "revoked token"])
def test_rejected_callers_get_401(stack, world, who):
    bearer = {"anonymous": None, "alpha token on beta": world.tokens["editor"]}
    slug = BETA if who == "alpha token on beta" else ALPHA
    c = client(stack, slug, bearer.get(who, world.revoked))
    response = c.get("/api/v1/pages/home")
    assert response.status_code == 401 and response.json()["error"]


def test_public_wiki_reads_anonymously_but_writes_need_login(stack, world):
    anonymous = client(stack, PUBLIC)
    assert anonymous.get("/api/v1/pages/home").status_code == 200
    assert anonymous.get("/api/v1/whoami").json()["permissions"] == ["READ"]
    assert anonymous.put("/api/v1/pages/home", json={"content": "x"}).status_code == 401


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("GET", "/api/v1/pages/a/%2E%2E/b", {}, 400),
        ("PUT", "/api/v1/pages/a%00b", {"json": {"content": "x"}}, 400),
        (
            "PUT",
            "/api/v1/pages/x",
            {"content": b"not json", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        ("PUT", "/api/v1/pages/x", {"json": {"content": ["list"]}}, 400),
        ("PUT", "/api/v1/pages/x", {"json": {"content": "x" * (1024 * 1024 + 10)}}, 413),
        ("GET", "/api/v1/pages/no-such-page", {}, 404),
        ("GET", "/api/v1/pages/home?revision=--all", {}, 400),
        ("GET", "/api/v1/pages/home?revision=" + "0" * 40, {}, 404),
        ("GET", "/api/v1/search?q=", {}, 400),
        ("GET", "/api/v1/changes?limit=0", {}, 400),
    ],
)
def test_bad_input_is_4xx_with_message(editor, method, url, kwargs, status):
    response = editor.request(method, url, **kwargs)
    assert response.status_code == status and response.json()["error"]


def _as_told(request, refused: list):
    """Send `request()` as a polite client does: a 429 (the wiki's turns are taken, see
    app/wiki/turns.py) or a 503 with Retry-After (its write lock stayed busy) writes nothing,
    so it is sent again after its Retry-After. Each is kept in `refused` to check."""
    for _ in range(60):
        response = request()
        if response.status_code not in (429, 503) or "Retry-After" not in response.headers:
            return response
        refused.append(response)
        time.sleep(int(response.headers["Retry-After"]))
    return response


def _writer(stack, token, index, results, refused):
    with client(stack, bearer=token) as c:
        for round_ in range(3):
            if index % 4 == 0:  # a quarter of the writers race on one page with base_revision
                current = _as_told(partial(c.get, "/api/v1/pages/race/shared"), refused).json()
                body = {"content": f"w{index} r{round_}", "base_revision": current["revision"]}
                response = _as_told(partial(c.put, "/api/v1/pages/race/shared", json=body), refused)
            else:
                body = {"content": f"w{index} r{round_}"}
                path = f"/api/v1/pages/race/own-{index}"
                response = _as_told(partial(c.put, path, json=body), refused)
            results.append((index, round_, response.status_code, response.json()))


def test_concurrent_writers_lose_nothing(stack, world, editor):
    editor.put("/api/v1/pages/race/shared", json={"content": "start"})
    results: list = []
    refused: list = []
    threads = [
        threading.Thread(target=_writer, args=(stack, world.tokens["editor"], i, results, refused))
        for i in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(results) == WRITERS * 3
    assert {status for *_, status, _ in results} <= {200, 201, 409}
    assert all(body["error"] for *_, status, body in results if status == 409)
    assert all(r.json()["error"] and int(r.headers["Retry-After"]) >= 1 for r in refused)
    in_git = git_revisions(stack)
    assert {body["revision"] for *_, status, body in results if status < 300} <= in_git
    for index in (i for i in range(WRITERS) if i % 4):
        acked = [r for i, r, status, _ in results if i == index and status < 300]
        page = editor.get(f"/api/v1/pages/race/own-{index}").json()
        assert page["content"] == f"w{index} r{max(acked)}"


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("1:1%20with%20Bob", "drive name"),
        ("C:notes", "drive name"),
        ("a:", "drive name"),
        ("git~1/x", "read as '.git'"),
        ("notes/GIT~1", "read as '.git'"),
        ("notes/.git.", "read as '.git'"),
    ],
)
def test_names_gits_index_refuses_are_refused_and_the_wiki_still_takes_writes(editor, path, error):
    """Sixteenth review: `1:1 with Bob` answered 500 (GitPython's index reader refuses a path
    that starts with a drive name, and one read as `.git`), through the page API, the editor
    and MCP alike; pushed, it made every later write fail."""
    refused = editor.put(f"/api/v1/pages/{path}", json={"content": "x"})
    assert refused.status_code == 400 and error in refused.json()["error"], refused.text
    attachment = editor.put("/api/v1/pages/Home/attachments/git~1", content=b"x")
    assert attachment.status_code == 400, attachment.text
    assert editor.put("/api/v1/pages/after-odd-names", json={"content": "x"}).status_code in (
        200,
        201,
    )
