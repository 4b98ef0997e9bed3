"""Real-browser checks: what a person sees in headless chromium on a wiki host."""

from __future__ import annotations

import subprocess

import pytest

from app.core.store import Store
from app.core.wikis import create_wiki
from tests.browser import Browser
from tests.browser import browser_available

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(not browser_available(), reason="chromium not installed (make test does)"),
]

OWNER = ("did:plc:browserowner", "browser-owner.test")


@pytest.fixture(scope="module")
def wiki(stack):
    store = Store(stack.settings.database_url)
    store.upsert_user(*OWNER)
    create_wiki(stack.settings, store, "browse-private", OWNER[0], "Browser Wiki")
    create_wiki(stack.settings, store, "browse-public", OWNER[0], "Open Wiki", public=True)
    yield stack
    store.close()


@pytest.fixture
def browser():
    session = Browser()
    yield session
    session.close()


def wiki_url(stack, slug, path="/"):
    return f"http://{slug}.localhost:{stack.port('otterwiki')}{path}"


def test_anonymous_visitor_is_sent_to_login(wiki, browser):
    browser.get(wiki_url(wiki, "browse-private"))
    assert browser.url.startswith(f"http://localhost:{wiki.port('auth')}/auth/login")
    assert "Welcome to your wiki" not in browser.text()


def test_public_wiki_is_readable_anonymously(wiki, browser):
    browser.get(wiki_url(wiki, "browse-public"))
    assert "Welcome to your wiki" in browser.text()


def test_owner_with_session_cookie_sees_the_wiki(wiki, browser, tmp_path):
    secret = wiki.browser_session(OWNER[0], "browse-private.localhost")
    browser.get(wiki_url(wiki, "browse-private", "/healthz"))
    browser.add_cookie("robot_session", secret)
    browser.get(wiki_url(wiki, "browse-private"))
    assert "Welcome to your wiki" in browser.text()
    browser.screenshot(tmp_path / "wiki.png")


def test_unknown_wiki_shows_not_found_page(wiki, browser):
    browser.get(wiki_url(wiki, "no-such-wiki"))
    assert "not found" in browser.text().lower()


def login(stack, browser, slug, did):
    secret = stack.browser_session(did, f"{slug}.localhost")
    browser.get(wiki_url(stack, slug, "/healthz"))
    browser.add_cookie("robot_session", secret)


def wait_for(browser, condition, timeout=45.0):
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out on {browser.url}: {browser.text()[:300]}")
        time.sleep(0.2)


def test_owner_edits_a_page_in_the_editor(wiki, browser):
    login(wiki, browser, "browse-private", OWNER[0])
    browser.get(wiki_url(wiki, "browse-private", "/Browser%20Notes/edit"))
    wait_for(browser, lambda: browser.script("return typeof cm_editor !== 'undefined';"))
    browser.script(
        "cm_editor.dispatch({changes: {from: 0, insert: arguments[0]}});",
        "# Browser Notes\n\nTyped by a real browser.\n",
    )
    browser.click("#save-page-btn")
    save = "#modal-commit input[type=submit]"
    wait_for(
        browser, lambda: browser.script(f"return !!document.querySelector('{save}').offsetParent;")
    )
    browser.type("#commit-message", "Notes from the browser")
    browser.click(save)
    wait_for(browser, lambda: "/edit" not in browser.url)
    browser.get(wiki_url(wiki, "browse-private", "/Browser%20Notes"))
    assert "Typed by a real browser." in browser.text()
    author = subprocess.run(
        ["git", "log", "-1", "--format=%an|%s"],
        cwd=wiki.settings.repo_path("browse-private"),
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert author == f"{OWNER[1]}|Notes from the browser"


def test_logged_in_stranger_is_refused(wiki, browser):
    stranger = "did:plc:browserstranger"
    Store(wiki.settings.database_url).upsert_user(stranger, "stranger.test")
    login(wiki, browser, "browse-private", stranger)
    browser.get(wiki_url(wiki, "browse-private"))
    assert "Welcome to your wiki" not in browser.text()
    assert "not a member" in browser.text().lower()
