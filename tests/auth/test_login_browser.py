"""Sign in with ATProto in headless chromium, on the real stack, against the fake network."""

from __future__ import annotations

import pytest

from app.core.store import Store
from app.core.wikis import create_wiki
from tests.browser import Browser
from tests.browser import browser_available

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(not browser_available(), reason="chromium not installed (make test does)"),
]


@pytest.fixture
def atproto_stack(make_stack, fake_net):
    """A stack whose sign-in reaches the fake ATProto network (the loopback test switches)."""
    return make_stack(**fake_net.stack_env())


@pytest.fixture
def browser():
    session = Browser()
    yield session
    session.close()


@pytest.fixture
def store(atproto_stack):
    instance = Store(atproto_stack.settings.database_url)
    yield instance
    instance.close()


def test_sign_in_from_the_login_form_to_the_dashboard(atproto_stack, fake_net, browser, store):
    # The stack cannot resolve *.test names, so the person types their DID; the handle in the
    # DID document does not resolve back there and counts as handle.invalid (Handle spec).
    did = fake_net.add_account("alice.test")
    auth = f"http://localhost:{atproto_stack.port('auth')}"
    fake_net.sign_in_with_browser(browser, auth, did)
    assert browser.url == f"http://localhost:{atproto_stack.port('api')}/app/"
    assert "Your wikis" in browser.text() and "@handle.invalid" in browser.text()
    assert store.find_user(did) is not None
    [session] = store.list_sessions(did)
    assert store.session_upstream(session.id)["issuer"] == fake_net.origin
    # The apex cookie also signs the browser in to the api service (same host, other port).
    browser.get(f"http://localhost:{atproto_stack.port('api')}/api/wikis")
    assert '"wikis":[]' in browser.text().replace(" ", "")


def test_denied_consent_ends_on_a_clear_page(atproto_stack, fake_net, browser, store):
    did = fake_net.add_account("bob.test")
    auth = f"http://localhost:{atproto_stack.port('auth')}"
    fake_net.sign_in_with_browser(browser, auth, did, decision="deny")
    assert "/auth/callback?" in browser.url
    assert "the sign-in was not approved" in browser.text()
    assert store.find_user(did) is None and store.list_sessions(did) == []


def test_sign_in_from_a_private_wiki_lands_back_on_it_signed_in(
    atproto_stack, fake_net, browser, store
):
    # The whole way in: the wiki sends the anonymous browser to sign in, and the session
    # handoff brings it back signed in on the wiki host, its handle in the user menu.
    did = fake_net.add_account("alice.test")
    store.upsert_user(did, "alice.test")
    create_wiki(atproto_stack.settings, store, "signin-wiki", did, "Signed-in wiki")
    wanted = f"http://signin-wiki.localhost:{atproto_stack.port('otterwiki')}/Home?from=test"
    browser.get(wanted)
    browser.wait_for(lambda: "/auth/login?" in browser.url)
    browser.type("#account", did)  # the stack cannot resolve *.test handles: type the DID
    browser.click("button[type=submit]")
    browser.wait_for(lambda: browser.url.startswith(fake_net.origin + "/oauth/authorize?"))
    browser.click("#approve")
    browser.wait_for(lambda: browser.url == wanted)
    account = "return document.getElementById('robot-account').textContent.trim();"
    # The typed DID's handle does not resolve back here, so the known handle stays.
    assert browser.script(account) == "alice.test"
    assert "robot_session" in browser.cookies()  # the wiki host's own cookie
