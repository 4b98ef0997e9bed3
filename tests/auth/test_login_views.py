"""The sign-in pages of the auth service, driven through Flask's test client against the fake
ATProto network (real HTTP to it). Every failure ends on a page that says what failed, with a
4xx/5xx status, and leaves no session and no user row."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import httpx2
import pytest

from app.auth.atproto import login
from app.auth_server import create_app
from app.web.session_cookie import cookie_name

CALLBACK_BASE = "http://127.0.0.1:8003"  # where ATProto's loopback client returns


@pytest.fixture
def app(platform, network):
    app = create_app(platform.settings)
    app.extensions["robot_atproto_network"] = network
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def alice(fake_net) -> str:
    return fake_net.add_account("alice.test")


def csrf_token(client) -> str:
    page = client.get("/auth/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def start(client, account="alice.test", return_to=""):
    form = {"account": account, "csrf_token": csrf_token(client), "return_to": return_to}
    return client.post("/auth/login", data=form)


def at_the_server(fake_net, response, decision="approve") -> str:
    """Follow the 303 to the fake AS, decide there; return the callback path and query."""
    assert response.status_code == 303, response.get_data(as_text=True)
    request_uri = parse_qs(urlsplit(response.location).query)["request_uri"][0]
    answer = httpx2.post(
        fake_net.origin + "/oauth/authorize",
        data={"request_uri": request_uri, "decision": decision},
    )
    back = urlsplit(answer.headers["location"])
    return f"{back.path}?{back.query}"


def assert_nobody_signed_in(store, did):
    assert store.find_user(did) is None
    assert store.list_sessions(did) == []


def test_login_form_works_without_javascript(client):
    response = client.get("/auth/login?return_to=http://localhost:8002/x")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert '<label for="account">' in page and 'name="csrf_token"' in page
    assert 'value="http://localhost:8002/x"' in page
    assert "script-src" not in response.headers["Content-Security-Policy"]


def test_next_is_an_alias_of_return_to(client):
    page = client.get("/auth/login?next=http://localhost:8002/y").get_data(as_text=True)
    assert 'value="http://localhost:8002/y"' in page


def test_foreign_return_to_is_replaced(client):
    page = client.get("/auth/login?return_to=https://evil.example/").get_data(as_text=True)
    assert "evil.example" not in page


def test_sign_in_creates_the_user_and_a_session(client, platform, fake_net, alice):
    callback = at_the_server(fake_net, start(client, "@alice.test"))
    handoff = client.get(callback, base_url=CALLBACK_BASE)
    assert handoff.status_code == 303
    assert handoff.location.startswith(platform.settings.auth_origin + "/auth/handoff?code=")
    landed = client.get(handoff.location)
    assert landed.status_code == 303 and landed.location == platform.settings.dashboard_url
    assert cookie_name(platform.settings) in landed.headers["Set-Cookie"]
    page = client.get("/auth/signed-in").get_data(as_text=True)
    assert "Signed in as <strong>@alice.test</strong>" in page
    assert platform.store.find_user(alice).handle == "alice.test"
    [session] = platform.store.list_sessions(alice)
    assert platform.store.session_upstream(session.id)["issuer"] == fake_net.origin


def test_callback_on_the_apex_sets_the_apex_cookie_at_once(client, platform, fake_net, alice):
    # A deployed (confidential) client's redirect_uri is on the apex itself: no handoff.
    wanted = platform.settings.auth_origin + "/auth/signed-in?from=test"
    callback = at_the_server(fake_net, start(client, "alice.test", wanted))
    response = client.get(callback)
    assert response.status_code == 303 and response.location == wanted
    assert cookie_name(platform.settings) in response.headers["Set-Cookie"]
    assert len(platform.store.list_sessions(alice)) == 1


def sign_in(client, fake_net, account):
    callback = at_the_server(fake_net, start(client, account))
    assert client.get(callback).status_code == 303


def test_a_new_handle_is_refreshed_at_sign_in(client, store, fake_net, alice):
    sign_in(client, fake_net, "alice.test")
    fake_net.accounts[alice] = "bob.test"  # the account moved to a new handle
    sign_in(client, fake_net, "bob.test")
    assert store.find_user(alice).handle == "bob.test"
    assert len(store.list_sessions(alice)) == 2


def test_a_handle_that_no_longer_verifies_keeps_the_known_one(client, store, fake_net, alice):
    sign_in(client, fake_net, "alice.test")
    fake_net.accounts[alice] = "gone.example.org"  # claimed, but resolves nowhere
    sign_in(client, fake_net, alice)
    assert store.find_user(alice).handle == "alice.test"


def test_handoff_code_is_single_use(client, platform, fake_net, alice):
    callback = at_the_server(fake_net, start(client))
    handoff = client.get(callback, base_url=CALLBACK_BASE).location
    client.get(handoff)
    again = client.get(handoff)
    assert again.status_code == 400 and "unknown, used or expired" in again.get_data(as_text=True)


def test_handoff_is_redeemed_on_the_apex_only(client, platform, fake_net, alice):
    callback = at_the_server(fake_net, start(client))
    handoff = urlsplit(client.get(callback, base_url=CALLBACK_BASE).location)
    elsewhere = client.get(f"{handoff.path}?{handoff.query}", base_url=CALLBACK_BASE)
    assert elsewhere.status_code == 400 and "Set-Cookie" not in elsewhere.headers


def test_form_without_csrf_token_is_refused(client, store, alice):
    response = client.post("/auth/login", data={"account": "alice.test"})
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "account, message",
    [
        ("not a handle!", "not a valid handle"),
        ("alice.localhost", "top-level domain is reserved"),
        ("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "there is no account"),
        ("nobody.test", "could not find the account of nobody.test"),
        ("https://pds.example.com/some/path", "without a path"),
        # Seventeenth review: 502 ("is not an https origin") for the user's own typing.
        ("https://user:pw@example.com", "without a path, a user or a password"),
        ("https://user@example.com/", "without a path, a user or a password"),
        ("https://example.com#frag", "without a path, a user or a password"),
        ("https://:443", "without a path, a user or a password"),
    ],
)
def test_bad_input_says_what_failed(client, account, message):
    response = start(client, account)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_input_is_escaped_on_the_error_page(client):
    page = start(client, "<script>x</script>").get_data(as_text=True)
    assert "<script>x" not in page and "&lt;script&gt;x" in page


@pytest.mark.parametrize(
    "knob, value, status, message",
    [
        ("no_par", True, 502, "does not declare require_pushed_authorization_requests"),
        ("pds_redirects", True, 502, "redirects are not followed"),
        ("garbage_as_metadata", True, 502, "is not a JSON object"),
        ("private_handles", {"alice.test"}, 400, "private or reserved address"),
    ],
)
def test_misbehaving_network_ends_on_a_clear_page(
    client, store, fake_net, alice, knob, value, status, message
):
    setattr(fake_net.knobs, knob, value)
    response = start(client)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert_nobody_signed_in(store, alice)


def test_slow_server_is_a_504(client, store, fake_net, network, alice):
    fake_net.knobs.slow_as_metadata = 1.5
    network.fetcher.timeouts = (1.0, 0.5, 1.0)
    response = start(client)
    assert response.status_code == 504 and "did not answer in time" in response.get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    "knob, decision, message",
    [
        ("wrong_sub", "approve", "signed in a different account"),
        ("wrong_iss", "approve", "did not come from the server the sign-in started at"),
        (None, "deny", "the sign-in was not approved"),
    ],
)
def test_refused_callbacks_sign_nobody_in(
    client, platform, fake_net, alice, knob, decision, message
):
    if knob == "wrong_sub":
        fake_net.knobs.wrong_sub = fake_net.add_account("mallory.test")
    elif knob == "wrong_iss":
        fake_net.knobs.wrong_iss = "https://evil.example"
    callback = at_the_server(fake_net, start(client), decision)
    response = client.get(callback, base_url=CALLBACK_BASE)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page and "You are not signed in" in page
    assert_nobody_signed_in(platform.store, alice)
    assert cookie_name(platform.settings) not in response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("tamper", ["replay", "unknown_state", "no_code"])
def test_tampered_or_replayed_callback_is_refused(client, store, fake_net, alice, tamper):
    callback = at_the_server(fake_net, start(client))
    if tamper == "replay":
        client.get(callback, base_url=CALLBACK_BASE)
        sessions_before = len(store.list_sessions(alice))
    else:
        sessions_before = 0
        query = parse_qs(urlsplit(callback).query)
        if tamper == "unknown_state":
            query["state"] = ["forged"]
        else:
            del query["code"]
        callback = "/auth/callback?" + urlencode({k: v[0] for k, v in query.items()})
    response = client.get(callback, base_url=CALLBACK_BASE)
    expected = "no authorization code" if tamper == "no_code" else "please start again"
    assert response.status_code == 400 and expected in response.get_data(as_text=True)
    assert len(store.list_sessions(alice)) == sessions_before


def test_expired_login_request_signs_nobody_in(client, store, fake_net, alice, monkeypatch):
    callback = at_the_server(fake_net, start(client))
    later = time.time() + 601
    monkeypatch.setattr(login, "time", SimpleNamespace(time=lambda: later))
    response = client.get(callback, base_url=CALLBACK_BASE)
    assert response.status_code == 400 and "has expired" in response.get_data(as_text=True)
    assert_nobody_signed_in(store, alice)


# -- login CSRF: a sign-in finishes only in the browser that started it (RFC 6749 §10.12) ------


def test_a_relayed_apex_callback_signs_the_other_browser_in_as_nobody(app, platform, fake_net):
    """The attacker starts a sign-in with their own account and hands the callback to a victim."""
    mallory = fake_net.add_account("mallory.test")
    attacker, victim = app.test_client(), app.test_client()
    wanted = platform.settings.auth_origin + "/auth/signed-in"
    callback = at_the_server(fake_net, start(attacker, mallory, wanted))
    response = victim.get(callback)
    assert response.status_code == 400
    assert "started in another browser" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert platform.store.list_sessions(mallory) == []


def test_a_relayed_loopback_handoff_signs_the_other_browser_in_as_nobody(app, platform, fake_net):
    """The loopback client's callback hops to the apex; the hop checks the browser too."""
    mallory = fake_net.add_account("mallory.test")
    attacker, victim = app.test_client(), app.test_client()
    callback = at_the_server(fake_net, start(attacker, mallory))
    handoff = attacker.get(callback, base_url=CALLBACK_BASE).location
    relayed = victim.get(handoff)
    assert relayed.status_code == 400
    assert "started in another browser" in relayed.get_data(as_text=True)
    assert "Set-Cookie" not in relayed.headers
    assert platform.store.list_sessions(mallory) == []  # the half-made session was ended


@pytest.mark.parametrize("cookie", ["", "forged", "x" * 300])
def test_a_forged_signin_cookie_does_not_finish_a_sign_in(app, platform, fake_net, cookie):
    mallory = fake_net.add_account("mallory.test")
    attacker, victim = app.test_client(), app.test_client()
    callback = at_the_server(fake_net, start(attacker, mallory, ""))
    if cookie:
        victim.set_cookie("robot_signin", cookie)
    handoff = attacker.get(callback, base_url=CALLBACK_BASE).location
    assert victim.get(handoff).status_code == 400
    assert platform.store.list_sessions(mallory) == []
