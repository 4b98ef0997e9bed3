"""The auth service's session routes: the wiki-host handoff and logout everywhere."""

from __future__ import annotations

import re
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest

from app.auth.revocation import UPSTREAM_REVOKER
from app.auth.session_views import logout_token
from app.auth_server import create_app
from app.core import handoff
from app.core.wikis import create_wiki
from app.web.session_cookie import PLAIN_NAME
from tests.conftest import ALICE
from tests.core.test_handoff import HOSTILE_RETURN_TO

ALPHA_HOME = "http://alpha.localhost:8000/"


@pytest.fixture
def app(platform, users):
    create_wiki(platform.settings, platform.store, "alpha", ALICE[0])
    create_wiki(platform.settings, platform.store, "pub", ALICE[0], public=True)
    return create_app(platform.settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def apex(store, client):
    """Sign the client in at the apex (a session of Alice's); returns the cookie credential."""
    secret = store.create_session(ALICE[0], "localhost", 3600, upstream={"refresh_token": "r"})[1]
    client.set_cookie(PLAIN_NAME, secret, domain="localhost")
    return secret


def _wiki_session(client, **query):
    return client.get(f"{handoff.WIKI_SESSION_PATH}?{urlencode(query)}")


def _query(location: str) -> dict:
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def test_signed_in_browser_is_handed_back_with_a_code_for_that_host(client, apex, store):
    response = _wiki_session(client, host="alpha.localhost", return_to=ALPHA_HOME + "Page")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("http://alpha.localhost:8000/-/robot/session?")
    assert _query(location)["return_to"] == ALPHA_HOME + "Page"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    session, _secret = store.redeem_handoff(_query(location)["code"], "alpha.localhost")
    assert session.user_did == ALICE[0]


def test_the_code_is_bound_to_the_host_it_was_asked_for(client, apex, store):
    location = _wiki_session(client, host="alpha.localhost").headers["Location"]
    assert store.redeem_handoff(_query(location)["code"], "pub.localhost") is None


def test_browser_without_a_session_is_sent_to_sign_in_and_back(client):
    response = _wiki_session(client, host="alpha.localhost", return_to=ALPHA_HOME + "P")
    assert response.status_code == 303
    login, query = response.headers["Location"].split("?", 1)
    assert login == "http://localhost:8003/auth/login"
    back = parse_qs(query)["return_to"][0]
    assert back == handoff.wiki_session_url(
        client.application.extensions["robot"].settings, "alpha", ALPHA_HOME + "P"
    )


def test_an_ended_session_is_explained_with_a_way_to_sign_in_again(client):
    response = _wiki_session(client, host="pub.localhost", reason="expired")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Your session on pub.localhost has ended" in page
    assert 'id="sign-in-again"' in page and 'href="http://pub.localhost:8000/"' in page


def test_a_private_wiki_offers_no_way_on_without_signing_in(client):
    page = _wiki_session(client, host="alpha.localhost", reason="expired").get_data(as_text=True)
    assert "has ended" in page and 'id="go-on"' not in page


@pytest.mark.parametrize(
    "host",
    [
        None,
        "",
        "nowiki.localhost",
        "www.localhost",
        "evil.test",
        "localhost",
        "alpha.localhost:8000",
        "<script>alert(1)</script>",
        "a" * 5000,
    ],
)
def test_a_host_that_is_no_wiki_is_a_clear_400(client, apex, host):
    response = _wiki_session(client, **({} if host is None else {"host": host}))
    assert response.status_code == 400 and "Location" not in response.headers
    assert "There is no wiki at" in response.get_data(as_text=True)
    assert "<script>alert" not in response.get_data(as_text=True)


@pytest.mark.parametrize("return_to", [url for url in HOSTILE_RETURN_TO if url is not None])
def test_hostile_return_to_leads_to_the_wiki_home(client, apex, return_to):
    response = _wiki_session(client, host="alpha.localhost", return_to=return_to)
    assert response.status_code == 303
    assert _query(response.headers["Location"])["return_to"] == ALPHA_HOME


def test_logout_get_only_asks(client, apex, store):
    response = client.get("/auth/logout")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'method="post"' in page
    assert f'value="{logout_token(apex)}"' in page
    assert store.session_for_secret(apex, "localhost") is not None


def _wiki_credential(store, secret: str) -> str:
    session = store.session_for_secret(secret, "localhost")
    return store.redeem_handoff(
        store.create_handoff(session.id, "alpha.localhost"), "alpha.localhost"
    )[1]


def test_logout_ends_the_session_on_every_host(client, apex, store):
    wiki_secret = _wiki_credential(store, apex)
    response = client.post("/auth/logout", data={"csrf_token": logout_token(apex)})
    assert response.status_code == 303 and response.headers["Location"] == "/auth/logout"
    assert store.session_for_secret(apex, "localhost") is None
    assert store.session_for_secret(wiki_secret, "alpha.localhost") is None
    cleared = response.headers["Set-Cookie"]
    assert cleared.startswith(f"{PLAIN_NAME}=;") and "Domain" not in cleared
    assert "You are signed out" in client.get("/auth/logout").get_data(as_text=True)


@pytest.mark.parametrize(
    "token",
    [None, "", "0" * 64, "x" * 10_000, "ünïcødé", "' OR 1=1 --"],
)
def test_logout_post_without_our_token_changes_nothing(client, apex, store, token):
    response = client.post("/auth/logout", data={} if token is None else {"csrf_token": token})
    assert response.status_code == 403 and "still signed in" in response.get_data(as_text=True)
    assert store.session_for_secret(apex, "localhost") is not None


@pytest.mark.parametrize("origin", ["http://alpha.localhost:8000", "http://evil.test", "null"])
def test_logout_post_from_another_origin_changes_nothing(client, apex, store, origin):
    data = {"csrf_token": logout_token(apex)}
    response = client.post("/auth/logout", data=data, headers={"Origin": origin})
    assert response.status_code == 403
    assert store.session_for_secret(apex, "localhost") is not None


def test_logout_post_from_our_own_page(client, apex, store):
    data = {"csrf_token": logout_token(apex)}
    response = client.post("/auth/logout", data=data, headers={"Origin": "http://localhost:8003"})
    assert response.status_code == 303
    assert store.session_for_secret(apex, "localhost") is None


def test_logout_revokes_the_upstream_tokens(app, client, apex):
    revoked = []
    app.extensions[UPSTREAM_REVOKER] = revoked.append
    client.post("/auth/logout", data={"csrf_token": logout_token(apex)})
    assert revoked == [{"refresh_token": "r"}]


def test_a_failing_revocation_still_logs_out(app, client, apex, store):
    def unreachable(upstream):
        raise OSError("authorization server unreachable")

    app.extensions[UPSTREAM_REVOKER] = unreachable
    response = client.post("/auth/logout", data={"csrf_token": logout_token(apex)})
    assert response.status_code == 303
    assert store.session_for_secret(apex, "localhost") is None


def test_logout_without_a_session_just_says_so(client):
    response = client.post("/auth/logout")
    assert response.status_code == 303
    assert "signed out" in client.get("/auth/logout").get_data(as_text=True)


def test_session_pages_run_no_script(client, apex):
    response = client.get("/auth/logout")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "form-action 'self'" in policy
    assert not re.search(r"<script", response.get_data(as_text=True))
