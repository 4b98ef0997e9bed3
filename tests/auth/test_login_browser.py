"""Sign in with ATProto in headless chromium, on the real stack, against the fake network."""

from __future__ import annotations

import pytest

from app.core.store import Store
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


def test_sign_in_from_the_login_form_to_a_signed_in_page(atproto_stack, fake_net, browser, store):
    # The stack cannot resolve *.test names, so the person types their DID; the handle in the
    # DID document does not resolve back there and counts as handle.invalid (Handle spec).
    did = fake_net.add_account("alice.test")
    auth = f"http://localhost:{atproto_stack.port('auth')}"
    fake_net.sign_in_with_browser(browser, auth, did)
    assert browser.url == auth + "/auth/signed-in"
    assert "Signed in as @handle.invalid" in browser.text()
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
