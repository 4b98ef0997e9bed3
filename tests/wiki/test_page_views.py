"""The page API blueprint in process: a plain Flask app stands in for the tenancy layer's g."""

from types import SimpleNamespace

import pytest
from flask import Flask
from flask import g
from otterwiki.gitstorage import GitStorage

from app.core.identity import Caller
from app.core.settings import Settings
from app.core.store import Wiki
from app.wiki.page_api import bp

ROLES = {
    "admin": Caller("did:plc:alice", "alice.test", "admin", "token"),
    "viewer": Caller("did:plc:vic", "vic.test", "viewer", "token"),
    "stranger": Caller("did:plc:sam", "sam.test", None, "session"),
    "anonymous": Caller(),
}


@pytest.fixture
def client(tmp_path):
    storage = GitStorage(str(tmp_path / "repo"), initialize=True)
    storage.store("home.md", "# Home\n", "Create wiki", ("robot", "robot@localhost"))
    settings = Settings.from_env({"ROBOT_DATA_DIR": str(tmp_path / "data")})
    settings.wiki_dir("alpha").mkdir(parents=True)  # where the search index goes
    tenant = SimpleNamespace(
        slug="alpha",
        wiki=Wiki("alpha", "did:plc:alice", "Alpha", False, 0),
        storage=storage,
        settings=settings,
    )
    app = Flask(__name__)

    @app.before_request
    def _tenant():
        from flask import request

        g.tenant = tenant
        g.caller = ROLES[request.headers.get("X-Test-Role", "admin")]

    app.register_blueprint(bp)
    return app.test_client()


def test_whoami(client):
    body = client.get("/api/v1/whoami").get_json()
    assert body["wiki"] == "alpha" and body["role"] == "admin" and "WRITE" in body["permissions"]


def test_put_then_get(client):
    put = client.put("/api/v1/pages/Notes/Today", json={"content": "hi"})
    assert put.status_code == 201 and put.get_json()["path"] == "Notes/Today"
    got = client.get("/api/v1/pages/notes/today").get_json()
    assert got["content"] == "hi" and got["revision"] == put.get_json()["revision"]


@pytest.mark.parametrize(
    ("role", "status", "message"),
    [
        ("viewer", 403, "your role in this wiki is viewer"),
        ("stranger", 403, "you are not a member of this wiki"),
        ("anonymous", 401, "sign in"),
    ],
)
def test_write_refused_by_role(client, role, status, message):
    response = client.put("/api/v1/pages/x", json={"content": "x"}, headers={"X-Test-Role": role})
    assert response.status_code == status and message in response.get_json()["error"]


def test_viewer_reads(client):
    response = client.get("/api/v1/pages/home", headers={"X-Test-Role": "viewer"})
    assert response.status_code == 200


def test_stale_base_revision_is_409_with_current(client):
    first = client.put("/api/v1/pages/p", json={"content": "a"}).get_json()
    second = client.put("/api/v1/pages/p", json={"content": "b"}).get_json()
    stale = client.put("/api/v1/pages/p", json={"content": "c", "base_revision": first["revision"]})
    assert stale.status_code == 409
    assert stale.get_json()["current_revision"] == second["revision"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "not json", "content_type": "application/json"},
        {"data": "content=x", "content_type": "application/x-www-form-urlencoded"},
        {"json": ["a list"]},
        {"json": {"content": 5}},
        {"json": {"content": "x", "base_revision": 7}},
    ],
)
def test_bad_bodies_are_400(client, kwargs):
    response = client.put("/api/v1/pages/p", **kwargs)
    assert response.status_code == 400 and response.get_json()["error"]


def test_md_suffix_reaches_a_page_named_like_a_route(client):
    client.put("/api/v1/pages/project/history.md", json={"content": "the page"})
    assert client.get("/api/v1/pages/project/history.md").get_json()["content"] == "the page"
    # without the suffix the route wins: the history of page "project", which has none
    assert "no history" in client.get("/api/v1/pages/project/history").get_json()["error"]


def test_path_traversal_is_400(client):
    response = client.get("/api/v1/pages/a/%2E%2E/b")
    assert response.status_code == 400 and "'..'" in response.get_json()["error"]


def test_huge_content_is_413(client):
    response = client.put("/api/v1/pages/p", json={"content": "x" * (1024 * 1024 + 1)})
    assert response.status_code == 413


def test_attachment_is_sandboxed(client, tmp_path):
    (tmp_path / "repo" / "home").mkdir()
    (tmp_path / "repo" / "home" / "x.html").write_text("<script>1</script>")
    response = client.get("/api/v1/pages/home/attachments/x.html")
    assert response.data == b"<script>1</script>" and response.mimetype == "text/html"
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_listing_endpoints_answer_json(client):
    client.put("/api/v1/pages/a", json={"content": "[[B]] otter"})
    assert client.get("/api/v1/pages").get_json()["pages"][0]["path"] == "A"
    assert client.get("/api/v1/search?q=OTTER").get_json()["results"][0]["path"] == "A"
    assert client.get("/api/v1/pages/a/links").get_json()["missing"] == ["B"]
    assert client.get("/api/v1/orphans").get_json()["pages"] == ["A"]
    assert client.get("/api/v1/changes?limit=1").get_json()["changes"][0]["paths"] == ["A"]
