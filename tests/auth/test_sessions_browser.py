"""Sessions across hosts in headless chromium on the real stack: handoff, logout everywhere.

The browser is signed in at the apex by a session the test creates (the ATProto sign-in has
its own browser test); everything after that is the product's own redirects and pages.
"""

from __future__ import annotations

import pytest

from app.core.schema import sessions
from app.core.store import Store
from app.core.wikis import create_wiki
from tests.browser import Browser
from tests.browser import browser_available

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(not browser_available(), reason="chromium not installed (make test does)"),
]

USER = ("did:plc:handoffwalker", "handoff-walker.test")
ONE, TWO, PUB = "sess-one", "sess-two", "sess-pub"
COOKIE = "robot_session"
WELCOME = "Welcome to your wiki"


@pytest.fixture(scope="module")
def world(stack):
    store = Store(stack.settings.database_url)
    store.upsert_user(*USER)
    for slug in (ONE, TWO):
        create_wiki(stack.settings, store, slug, USER[0], f"Wiki {slug}")
    create_wiki(stack.settings, store, PUB, USER[0], "Public sessions wiki", public=True)
    yield stack, store
    store.close()


@pytest.fixture
def browser():
    session = Browser()
    yield session
    session.close()


def wiki_url(stack, slug, path="/"):
    return f"http://{slug}.localhost:{stack.port('otterwiki')}{path}"


def apex_url(stack, path):
    return f"http://localhost:{stack.port('auth')}{path}"


def sign_in_at_apex(stack, browser) -> None:
    browser.get(apex_url(stack, "/healthz"))
    browser.add_cookie(COOKIE, stack.browser_session(USER[0], "localhost"))


def menu_handle(browser) -> str:
    return browser.script(
        "const e = document.getElementById('robot-account'); return e ? e.textContent.trim() : '';"
    )


def test_handoff_to_two_wikis_then_logout_everywhere(world, browser):
    stack, store = world
    sign_in_at_apex(stack, browser)
    browser.record_csp_violations()
    for slug in (ONE, TWO):
        browser.get(wiki_url(stack, slug, "/"))
        browser.wait_for(lambda: WELCOME in browser.text())
        assert browser.url == wiki_url(stack, slug, "/")  # the code was in the URL one hop only
        assert menu_handle(browser) == USER[1]
        assert COOKIE in browser.cookies()
        assert browser.csp_violations() == []
    # Log out from the wiki's own menu: the platform asks, then ends the session everywhere.
    browser.click("#navbar-dropdown-toggle-btn-1")
    browser.click("#robot-logout")
    browser.wait_for(lambda: "Sign out?" in browser.text())
    browser.click("#sign-out")
    browser.wait_for(lambda: "You are signed out of every wiki" in browser.text())
    assert browser.csp_violations() == []
    assert store.list_sessions(USER[0]) == []
    for slug in (ONE, TWO):
        browser.get(wiki_url(stack, slug, "/"))
        browser.wait_for(lambda: "has ended" in browser.text())
        assert WELCOME not in browser.text()
    browser.get(f"http://localhost:{stack.port('api')}/api/wikis")
    assert '"status":401' in browser.text().replace(" ", "")


def test_a_public_wiki_offers_log_in_and_hands_off_on_click(world, browser):
    stack, _store = world
    sign_in_at_apex(stack, browser)
    browser.get(wiki_url(stack, PUB, "/"))
    assert WELCOME in browser.text() and menu_handle(browser) == ""  # never bounced unasked
    browser.click("#navbar-dropdown-toggle-btn-1")
    browser.click("#robot-login")
    browser.wait_for(lambda: menu_handle(browser) == USER[1])
    assert browser.url == wiki_url(stack, PUB, "/")


def test_a_cookie_copied_to_another_wiki_host_is_refused(world, browser):
    stack, _store = world
    copied = stack.browser_session(USER[0], f"{ONE}.localhost")
    browser.get(wiki_url(stack, TWO, "/healthz"))
    browser.add_cookie(COOKIE, copied)
    browser.get(wiki_url(stack, TWO, "/"))
    browser.wait_for(lambda: "has ended" in browser.text())
    assert WELCOME not in browser.text()
    browser.get(wiki_url(stack, TWO, "/healthz"))
    assert COOKIE not in browser.cookies()  # the refused cookie was dropped


def _handoff_code(store, host: str, ttl: int = 60) -> str:
    session, _secret = store.create_session(USER[0], "localhost", 3600)
    return store.create_handoff(session.id, host, ttl)


@pytest.mark.parametrize("kind", ["forged", "replayed", "expired", "other-host"])
def test_a_bad_handoff_code_ends_on_a_clear_page_with_no_cookie(world, browser, kind):
    stack, store = world
    code = {
        "forged": lambda: "forged-code-0123456789",
        "replayed": lambda: _handoff_code(store, f"{ONE}.localhost"),
        "expired": lambda: _handoff_code(store, f"{ONE}.localhost", ttl=0),
        "other-host": lambda: _handoff_code(store, f"{TWO}.localhost"),
    }[kind]()
    if kind == "replayed":
        assert store.redeem_handoff(code, f"{ONE}.localhost") is not None
    browser.get(wiki_url(stack, ONE, f"/-/robot/session?code={code}"))
    assert "This sign-in link does not work" in browser.text()
    assert COOKIE not in browser.cookies()
    log = stack.settings.log_dir / "otterwiki.log"
    browser.wait_for(lambda: "/-/robot/session?code=[redacted]" in log.read_text())
    assert code not in log.read_text()


def test_an_expired_session_sends_the_browser_to_sign_in_with_a_message(world, browser):
    stack, store = world
    session, secret = store.create_session(USER[0], f"{ONE}.localhost", 3600)
    with store.engine.begin() as connection:
        connection.execute(
            sessions.update().where(sessions.c.id == session.id).values(expires_at=1)
        )
    browser.get(wiki_url(stack, ONE, "/healthz"))
    browser.add_cookie(COOKIE, secret)
    browser.get(wiki_url(stack, ONE, "/Some%20Page"))
    browser.wait_for(lambda: "has ended" in browser.text())
    assert f"Your session on {ONE}.localhost has ended" in browser.text()
    browser.click("#sign-in-again")
    browser.wait_for(lambda: "/auth/login" in browser.url)
