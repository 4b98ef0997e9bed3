"""The account API: who I am, my own sessions (never another user's), deleting my account."""

from __future__ import annotations

import pytest

from app.api_server import create_app
from app.core.errors import Unavailable
from app.core.locks import wiki_write_lock
from app.core.store import Store
from app.core.wikis import create_wiki
from app.web.session_cookie import PLAIN_NAME
from tests.conftest import ALICE
from tests.conftest import BOB

SAME_ORIGIN = {"Origin": "http://localhost:8002"}


@pytest.fixture
def client(platform, users):
    return create_app(platform.settings).test_client()


@pytest.fixture
def cookie(store, client):
    """Alice is signed in at the apex in this client; returns her cookie credential."""
    secret = store.create_session(ALICE[0], "localhost", 3600, user_agent="Firefox")[1]
    client.set_cookie(PLAIN_NAME, secret, domain="localhost")
    return secret


@pytest.fixture
def bearer(platform):
    token = platform.key.mint_session(*ALICE, platform.settings.auth_origin, 3600)
    return {"Authorization": f"Bearer {token}"}


def test_list_marks_the_current_session(client, cookie, store):
    other = store.create_session(ALICE[0], "localhost", 3600, user_agent="Phone")[0]
    sessions = client.get("/api/account/sessions").json["sessions"]
    assert {s["id"]: s["current"] for s in sessions}[other.id] is False
    [current] = [s for s in sessions if s["current"]]
    assert current["user_agent"] == "Firefox" and current["handle"] == ALICE[1]


def test_list_shows_only_my_live_sessions(client, bearer, store):
    mine = store.create_session(ALICE[0], "localhost", 3600)[0]
    ended = store.create_session(ALICE[0], "localhost", 3600)[0]
    store.end_session(ended.id)
    store.create_session(BOB[0], "localhost", 3600)
    sessions = client.get("/api/account/sessions", headers=bearer).json["sessions"]
    assert [(s["id"], s["current"]) for s in sessions] == [(mine.id, False)]


def test_end_one_of_my_sessions_everywhere(client, bearer, store):
    session, secret = store.create_session(ALICE[0], "localhost", 3600)
    wiki_secret = store.redeem_handoff(
        store.create_handoff(session.id, "a1.localhost"), "a1.localhost"
    )[1]
    response = client.delete(f"/api/account/sessions/{session.id}", headers=bearer)
    assert response.status_code == 200 and response.json == {"ok": True, "ended": session.id}
    assert store.session_for_secret(secret, "localhost") is None
    assert store.session_for_secret(wiki_secret, "a1.localhost") is None


def test_ending_the_current_session_clears_its_cookie(client, cookie, store):
    current = store.session_for_secret(cookie, "localhost")
    response = client.delete(f"/api/account/sessions/{current.id}", headers=SAME_ORIGIN)
    assert response.status_code == 200
    assert response.headers["Set-Cookie"].startswith(f"{PLAIN_NAME}=;")


@pytest.mark.parametrize(
    "session_id", ["ses_000000000000000000000000", "x" * 500, "%00", "..", "ses_"]
)
def test_unknown_session_is_404(client, bearer, session_id):
    response = client.delete(f"/api/account/sessions/{session_id}", headers=bearer)
    assert response.status_code == 404 and response.json["error"]


def test_another_users_session_is_404_and_stays_live(client, bearer, store):
    bobs, secret = store.create_session(BOB[0], "localhost", 3600)
    response = client.delete(f"/api/account/sessions/{bobs.id}", headers=bearer)
    assert response.status_code == 404
    assert store.session_for_secret(secret, "localhost") is not None


def test_cookie_changes_must_come_from_the_platform(client, cookie, store):
    current = store.session_for_secret(cookie, "localhost")
    headers = {"Origin": "http://alpha.localhost:8000"}
    response = client.delete(f"/api/account/sessions/{current.id}", headers=headers)
    assert response.status_code == 403
    assert store.session_for_secret(cookie, "localhost") is not None


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic eDp5"}],
)
def test_no_valid_credentials_is_401(client, headers):
    response = client.get("/api/account/sessions", headers=headers)
    assert response.status_code == 401 and response.json["error"]


def test_a_dead_cookie_is_401(client, store):
    session, secret = store.create_session(ALICE[0], "localhost", 3600)
    store.end_session(session.id)
    client.set_cookie(PLAIN_NAME, secret, domain="localhost")
    assert client.get("/api/account/sessions").status_code == 401


@pytest.fixture
def owned(platform, users):
    """Alice owns alpha and is an editor of Bob's beta."""
    create_wiki(platform.settings, platform.store, "alpha", ALICE[0])
    create_wiki(platform.settings, platform.store, "beta", BOB[0])
    platform.store.set_member("beta", ALICE[0], "editor")
    return platform


def test_account_summary_names_me_and_the_wikis_i_own(client, bearer, owned):
    body = client.get("/api/account", headers=bearer).json
    assert (body["did"], body["handle"]) == ALICE
    assert body["member_since"] == owned.store.get_user(ALICE[0]).created_at
    assert [(w["slug"], w["page_count"]) for w in body["wikis"]] == [("alpha", 2)]


@pytest.mark.parametrize("body", [{}, {"confirm": "bob.test"}, {"confirm": 5}, {"confirm": ""}])
def test_delete_account_needs_my_handle_and_changes_nothing_without_it(client, bearer, owned, body):
    response = client.delete("/api/account", json=body, headers=bearer)
    assert response.status_code == 400 and ALICE[1] in response.json["error"]
    assert owned.store.find_user(ALICE[0]) and owned.store.find_wiki("alpha")


def test_delete_account_takes_my_wikis_memberships_tokens_and_sessions(client, cookie, owned):
    store, settings = owned.store, owned.settings
    _, secret = store.create_token("beta", ALICE[0], "editor")
    body = {"confirm": ALICE[1]}
    response = client.delete("/api/account", json=body, headers=SAME_ORIGIN)
    assert response.status_code == 200
    assert response.json == {"ok": True, "deleted": ALICE[0], "wikis": ["alpha"]}
    assert response.headers["Set-Cookie"].startswith(f"{PLAIN_NAME}=;")
    assert store.find_user(ALICE[0]) is None and not settings.wiki_dir("alpha").exists()
    assert store.session_for_secret(cookie, "localhost") is None
    assert store.authenticate_token(secret, "beta") is None
    assert [m.did for m in store.list_members("beta")] == [BOB[0]]


def test_a_failed_delete_account_leaves_everything(client, bearer, owned, monkeypatch):
    def failing(*args):
        raise Unavailable("the platform database is not answering; try again shortly")

    monkeypatch.setattr(Store, "delete_user", failing)
    response = client.delete("/api/account", json={"confirm": ALICE[1]}, headers=bearer)
    assert response.status_code == 503
    assert owned.store.find_wiki("alpha") and owned.settings.repo_path("alpha").is_dir()


def test_delete_account_while_an_edit_holds_a_wiki_of_mine_deletes_nothing(client, bearer, owned):
    """Refused at once (no API worker waits for the lock), naming the busy wiki."""
    with wiki_write_lock(owned.settings.wiki_dir("alpha")):
        response = client.delete("/api/account", json={"confirm": ALICE[1]}, headers=bearer)
    assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
    assert "alpha is busy" in response.json["error"]
    assert owned.store.find_user(ALICE[0]) and owned.store.find_wiki("alpha")
    assert owned.settings.repo_path("alpha").is_dir()
