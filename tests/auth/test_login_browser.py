"""Sign in with ATProto in headless chromium, on the real stack, against the fake network."""

from __future__ import annotations

import time

import pytest

from app.core.store import Store
from tests.browser import Browser
from tests.browser import browser_available

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(not browser_available(), reason="chromium not installed (make test does)"),
]


def wait_for_url(browser: Browser, prefix: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while not browser.url.startswith(prefix):
        if time.monotonic() > deadline:
            pytest.fail(f"browser at {browser.url}, not {prefix}\n{browser.text()}")
        time.sleep(0.1)
    return browser.url


@pytest.fixture
def atproto_stack(make_stack, fake_net):
    """A stack whose sign-in reaches the fake ATProto network (the loopback test switches)."""
    return make_stack(
        PLATFORM_DOMAIN="localhost",
        ATPROTO_PLC_URL=fake_net.origin,
        ATPROTO_ALLOW_INSECURE_LOOPBACK="1",
    )


@pytest.fixture
def browser():
    session = Browser()
    yield session
    session.close()


def test_sign_in_from_the_login_form_to_a_signed_in_page(atproto_stack, fake_net, browser):
    # The stack cannot resolve *.test names, so the person types their DID; the handle in the
    # DID document does not resolve back there and counts as handle.invalid (Handle spec).
    did = fake_net.add_account("alice.test")
    auth = f"http://localhost:{atproto_stack.port('auth')}"
    browser.get(auth + "/auth/login")
    browser.type("#account", did)
    browser.click("button[type=submit]")
    wait_for_url(browser, fake_net.origin + "/oauth/authorize?")
    browser.click("#approve")
    wait_for_url(browser, auth + "/auth/signed-in")
    assert "Signed in as @handle.invalid" in browser.text()
    store = Store(atproto_stack.settings.database_url)
    try:
        assert store.find_user(did) is not None
        [session] = store.list_sessions(did)
        assert store.session_upstream(session.id)["issuer"] == fake_net.origin
    finally:
        store.close()


def test_denied_consent_ends_on_a_clear_page(atproto_stack, fake_net, browser):
    did = fake_net.add_account("bob.test")
    browser.get(f"http://localhost:{atproto_stack.port('auth')}/auth/login")
    browser.type("#account", did)
    browser.click("button[type=submit]")
    wait_for_url(browser, fake_net.origin + "/oauth/authorize?")
    browser.click("#deny")
    wait_for_url(browser, f"http://127.0.0.1:{atproto_stack.port('auth')}/auth/callback")
    assert "the sign-in was not approved" in browser.text()
    store = Store(atproto_stack.settings.database_url)
    try:
        assert store.find_user(did) is None and store.list_sessions(did) == []
    finally:
        store.close()
