"""The account API: the caller's own sessions, listed and ended, never another user's."""

from __future__ import annotations

import pytest

from app.api_server import create_app
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
