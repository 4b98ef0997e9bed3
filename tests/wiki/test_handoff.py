"""The wiki side of the session handoff: redeeming codes, dead cookies, the account menu."""

from __future__ import annotations

import secrets
from types import SimpleNamespace
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
from werkzeug.test import Client

from app.core.handoff import wiki_session_url
from app.core.platform import Platform
from app.core.platform import init_instance
from app.core.settings import Settings
from app.core.wikis import create_wiki
from app.web.session_cookie import PLAIN_NAME
from tests.core.test_handoff import HOSTILE_RETURN_TO

ALICE = ("did:plc:hand-alice", "alice.test")
BOB = ("did:plc:hand-bob", "bob.test")
ALPHA, PUB = "alpha.localhost", "pub.localhost"


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    """alpha (private, Alice's; Bob is not a member) and pub (public, Alice's)."""
    settings = Settings.from_env(
        {"ROBOT_DATA_DIR": str(tmp_path_factory.mktemp("handoff")), "MULTI_TENANT": "true"}
    )
    init_instance(settings)
    platform = Platform.load(settings)
    for user in (ALICE, BOB):
        platform.store.upsert_user(*user)
    create_wiki(settings, platform.store, "alpha", ALICE[0], "Alpha Wiki")
    create_wiki(settings, platform.store, "pub", ALICE[0], "Public Wiki", public=True)
    from app.wsgi import create_app

    app = create_app(settings)
    yield SimpleNamespace(app=app, settings=settings, store=platform.store)
    app.tenancy.close()
    platform.store.close()


def _open(wiki, host, path, cookie=None, method="GET"):
    client = Client(wiki.app)
    if cookie:
        client.set_cookie(PLAIN_NAME, cookie, domain=host)
    return client.open(path, method=method, base_url=f"http://{host}", buffered=True)


def _code(wiki, user=ALICE, host=ALPHA, ttl=60):
    session, _ = wiki.store.create_session(user[0], "localhost", 3600)
    return wiki.store.create_handoff(session.id, host, ttl), session


def _redeem(wiki, code, return_to=None, host=ALPHA, method="GET"):
    query = {"code": code} if code is not None else {}
    if return_to is not None:
        query["return_to"] = return_to
    return _open(wiki, host, f"/-/robot/session?{urlencode(query)}", method=method)


def _cookie_of(response) -> str:
    header = response.headers["Set-Cookie"]
    return header.split(";", 1)[0].split("=", 1)[1]


def test_a_code_becomes_this_hosts_own_cookie(wiki):
    code, _ = _code(wiki)
    response = _redeem(wiki, code, "http://alpha.localhost:8000/Some/Page?x=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "http://alpha.localhost:8000/Some/Page?x=1"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{PLAIN_NAME}=") and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and "Domain" not in cookie
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = _open(wiki, ALPHA, "/", _cookie_of(response))
    assert page.status_code == 200 and ALICE[1] in page.get_data(as_text=True)


def test_the_user_menu_shows_the_handle_your_wikis_and_the_platforms_logout(wiki):
    code, _ = _code(wiki)
    page = _open(wiki, ALPHA, "/", _cookie_of(_redeem(wiki, code))).get_data(as_text=True)
    assert f"\n                        {ALICE[1]}\n" in page
    assert 'href="http://localhost:8003/auth/logout" id="robot-logout"' in page
    assert 'href="http://localhost:8002/app/" id="robot-wikis"' in page
    assert 'id="robot-login"' not in page and "/-/settings" not in page


def test_a_replayed_code_is_refused(wiki):
    code, _ = _code(wiki)
    assert _redeem(wiki, code).status_code == 302
    again = _redeem(wiki, code)
    assert again.status_code == 400 and "Set-Cookie" not in again.headers
    assert "already used" in again.get_data(as_text=True)


@pytest.mark.parametrize(
    "code",
    [
        None,
        "",
        "forged",
        pytest.param(secrets.token_urlsafe(32), id="well-formed"),
        "x" * 5000,
        "%00",
        "' OR 1=1 --",
        "\u00e9",
    ],
)
def test_a_forged_code_ends_on_a_clear_page(wiki, code):
    response = _redeem(wiki, code)
    assert response.status_code == 400 and "Set-Cookie" not in response.headers
    assert "You were not signed in" in response.get_data(as_text=True)


def test_an_expired_code_is_refused(wiki):
    code, _ = _code(wiki, ttl=0)
    response = _redeem(wiki, code)
    assert response.status_code == 400 and "Set-Cookie" not in response.headers


def test_a_code_for_another_host_is_refused_and_spent(wiki):
    code, _ = _code(wiki, host=PUB)
    assert _redeem(wiki, code, host=ALPHA).status_code == 400
    assert _redeem(wiki, code, host=PUB).status_code == 400  # its one try is gone


def test_a_code_of_an_ended_session_is_refused(wiki):
    code, session = _code(wiki)
    wiki.store.end_session(session.id)
    assert _redeem(wiki, code).status_code == 400


@pytest.mark.parametrize("return_to", HOSTILE_RETURN_TO)
def test_hostile_return_to_leads_to_the_wikis_home(wiki, return_to):
    code, _ = _code(wiki)
    response = _redeem(wiki, code, return_to)
    assert response.status_code == 302
    assert response.headers["Location"] == "http://alpha.localhost:8000/"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD"])
def test_only_a_get_redeems(wiki, method):
    code, _ = _code(wiki)
    response = _redeem(wiki, code, method=method)
    assert response.status_code in (302, 405) and "Set-Cookie" not in response.headers
    assert _redeem(wiki, code).status_code == 302  # the code was not spent


@pytest.mark.parametrize("path", ["/-/robot/session/x", "/-/robot//session", "/robot/session"])
def test_only_the_route_itself_redeems(wiki, path):
    code, _ = _code(wiki)
    response = _open(wiki, ALPHA, f"{path}?code={code}")
    assert "Set-Cookie" not in response.headers
    assert _redeem(wiki, code).status_code == 302


def test_a_cookie_copied_to_another_wiki_host_is_refused(wiki):
    code, _ = _code(wiki)
    alpha_cookie = _cookie_of(_redeem(wiki, code))
    response = _open(wiki, PUB, "/", alpha_cookie)
    assert response.status_code == 302  # treated as no session at all: ask for a new one
    assert response.headers["Location"].startswith("http://localhost:8003/auth/wiki-session?")
    assert ALICE[1] not in response.get_data(as_text=True)


def test_a_dead_cookie_is_dropped_and_the_browser_told_why(wiki):
    code, session = _code(wiki, host=PUB)
    cookie = _cookie_of(_redeem(wiki, code, host=PUB))
    wiki.store.end_session(session.id)
    response = _open(wiki, PUB, "/Page?x=1", cookie)
    assert response.status_code == 302
    assert response.headers["Location"] == wiki_session_url(
        wiki.settings, "pub", "http://pub.localhost:8000/Page?x=1", "expired"
    )
    assert response.headers["Set-Cookie"].startswith(f"{PLAIN_NAME}=;")


def test_the_page_api_answers_a_dead_cookie_itself(wiki):
    response = _open(wiki, PUB, "/api/v1/pages", "no-such-secret")
    assert response.status_code == 200 and "Location" not in response.headers


def test_anonymous_visitors_of_a_public_wiki_get_a_login_link_not_a_redirect(wiki):
    response = _open(wiki, PUB, "/Some%20Page?x=1")
    page = response.get_data(as_text=True)
    assert response.status_code in (200, 404) and "Location" not in response.headers
    login = wiki_session_url(wiki.settings, "pub", "http://pub.localhost:8000/Some%20Page?x=1")
    assert f'href="{login.replace("&", "&amp;")}" id="robot-login"' in page
    assert 'id="robot-logout"' not in page


def test_a_signed_in_stranger_sees_no_access_not_a_loop(wiki):
    code, _ = _code(wiki, user=BOB)
    response = _open(wiki, ALPHA, "/", _cookie_of(_redeem(wiki, code)))
    assert response.status_code == 403 and "not a member" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "query, back",
    [
        ("", "http://pub.localhost:8000/"),
        ("?next=/Some/Page%3Fx%3D1", "http://pub.localhost:8000/Some/Page?x=1"),
        ("?next=//evil.test/", "http://pub.localhost:8000/"),
        ("?next=/%5Cevil.test/", "http://pub.localhost:8000/"),
        ("?next=http://evil.test/", "http://pub.localhost:8000/"),
        ("?next=" + "&x=1" * 50, "http://pub.localhost:8000/"),
    ],
)
def test_otterwikis_login_leads_to_the_handoff(wiki, query, back):
    response = _open(wiki, PUB, "/-/login" + query)
    location = response.headers["Location"]
    assert location.startswith("http://localhost:8003/auth/wiki-session?")
    assert parse_qs(urlsplit(location).query)["return_to"] == [back]


def test_otterwikis_logout_leads_to_the_platforms(wiki):
    response = _open(wiki, PUB, "/-/logout")
    assert response.headers["Location"] == "http://localhost:8003/auth/logout"
