"""The management UI in headless chromium on the real stack, as a person uses it.

The browser is signed in at the apex by a session the test creates (the ATProto sign-in has its
own browser test); everything after that is clicks and typing on the product's own pages. Each
step leaves a screenshot in the test's tmp_path.
"""

from __future__ import annotations

import asyncio

import pytest

from app.core.store import Store
from app.core.wikis import create_wiki
from tests.browser import Browser
from tests.browser import browser_available
from tests.conftest import sign_in_at_apex
from tests.mcp.clients import connect
from tests.mcp.clients import rpc

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(not browser_available(), reason="chromium not installed (make test does)"),
]

OWNER, FRIEND = ("did:plc:uiwalker", "ui-walker.test"), ("did:plc:uifriend", "ui-friend.test")
LEAVER = ("did:plc:uileaver", "ui-leaver.test")
SLUG, WELCOME = "ui-walk", "Welcome to your wiki"


@pytest.fixture(scope="module")
def world(stack):
    store = Store(stack.settings.database_url)
    for user in (OWNER, FRIEND, LEAVER):
        store.upsert_user(*user)
    yield stack, store
    store.close()


def api(stack, path: str) -> str:
    return f"http://localhost:{stack.port('api')}{path}"


def signed_in(stack, browser: Browser, user) -> Browser:
    return sign_in_at_apex(stack, browser, user[0])


def shows(browser: Browser, text: str) -> None:
    browser.wait_for(lambda: text in browser.text())


def type_slug(browser: Browser, slug: str, answer: str) -> None:
    browser.script("document.getElementById('slug').value = '';")
    browser.type("#slug", slug)
    browser.wait_for(lambda: answer in browser.script(_STATUS))


_WIKIS_LINK = "return document.getElementById('robot-wikis').href;"
_COPY_BUTTON = "return document.querySelector(\"button[data-copy='#token-secret']\").textContent;"
_COPY_HIDDEN = "return document.querySelector('button[data-copy]').hidden;"
_STATUS = "return document.getElementById('slug-status').textContent;"


async def _whoami(stack, secret: str) -> str:
    async with connect("fastmcp", stack, f"{SLUG}.localhost", secret) as session:
        return (await session.call("whoami")).text


def test_create_share_publish_connect_and_delete_a_wiki(world, browsers, tmp_path):
    stack, store = world
    owner = signed_in(stack, browsers(), OWNER)
    owner.record_csp_violations()
    owner.get(api(stack, "/"))
    shows(owner, "Your wikis")
    assert owner.url == api(stack, "/app/")
    # Create: the name is checked as it is typed, and again by the server.
    type_slug(owner, "www", "reserved")
    type_slug(owner, SLUG, "is free")
    owner.type("#display_name", "Walk <wiki>")
    owner.screenshot(tmp_path / "1-dashboard.png")
    owner.click("#create-wiki")
    shows(owner, "is ready")
    assert store.get_wiki(SLUG).owner_did == OWNER[0]
    # Open it on its own host.
    owner.click("#open-wiki")
    shows(owner, WELCOME)
    assert owner.url.startswith(f"http://{SLUG}.localhost:{stack.port('otterwiki')}/")
    assert owner.script(_WIKIS_LINK) == api(stack, "/app/")  # the wiki's menu leads back
    # Add a collaborator, who then sees it with their role.
    owner.get(api(stack, f"/app/wiki/{SLUG}"))
    owner.type("#member", FRIEND[0])
    owner.click("#add-member")
    shows(owner, f"{FRIEND[1]} is now editor")
    friend = signed_in(stack, browsers(), FRIEND)
    friend.get(api(stack, "/app/"))
    shows(friend, "Walk <wiki>")
    assert friend.script("return document.querySelector('#shared-wikis .role').textContent;") == (
        "editor"
    )
    friend.screenshot(tmp_path / "2-friend-dashboard.png")
    # Make it public: a signed-out browser reads it.
    owner.click("#visibility-public")
    owner.click("#save-settings")
    shows(owner, "Settings saved.")
    stranger = browsers()
    stranger.get(f"http://{SLUG}.localhost:{stack.port('otterwiki')}/")
    shows(stranger, WELCOME)
    # A token, shown once, connects a real MCP client; revoked, it stops at once.
    owner.type("#label", "walk agent")
    owner.click("#create-token")
    shows(owner, "only time it is shown")
    secret = owner.script("return document.getElementById('token-secret').textContent;")
    owner.cdp(
        "Browser.grantPermissions",
        {
            "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
            "origin": api(stack, ""),
        },
    )
    owner.click("button[data-copy='#token-secret']")
    owner.wait_for(lambda: owner.script(_COPY_BUTTON) == "Copied")
    assert owner.script("return navigator.clipboard.readText();") == secret
    owner.screenshot(tmp_path / "3-token.png")
    assert OWNER[1] in asyncio.run(_whoami(stack, secret))
    owner.click("#back-to-settings")
    shows(owner, "walk agent")
    owner.click("#tokens tbody tr button")
    shows(owner, "is revoked")
    assert rpc(stack, f"{SLUG}.localhost", secret).status_code == 401
    owner.screenshot(tmp_path / "4-settings.png")
    # Delete it after typing its name.
    owner.type("#confirm", SLUG)
    owner.click("#delete-wiki")
    shows(owner, "is deleted")
    assert store.find_wiki(SLUG) is None
    owner.screenshot(tmp_path / "5-deleted.png")
    assert owner.csp_violations() == []


def test_a_narrow_screen_needs_no_sideways_scrolling(world, browsers, tmp_path):
    stack, _store = world
    browser = signed_in(stack, browsers(), OWNER)
    browser.cdp(
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True},
    )
    for path in ("/", "/app/", "/app/account"):
        browser.get(api(stack, path))
        browser.screenshot(tmp_path / f"narrow{path.replace('/', '-')}.png")
        width = browser.script("return document.documentElement.scrollWidth;")
        assert width <= 360, path


def test_delete_my_account_after_the_warning(world, browsers, tmp_path):
    stack, store = world
    create_wiki(stack.settings, store, "ui-leaving", LEAVER[0], "Leaving soon")
    browser = signed_in(stack, browsers(), LEAVER)
    browser.record_csp_violations()
    browser.get(api(stack, "/app/account"))
    shows(browser, "Leaving soon")  # the wikis that go with it
    browser.type("#confirm", LEAVER[1])
    browser.screenshot(tmp_path / "account.png")
    browser.click("#delete-account")
    shows(browser, "Your account is deleted")
    assert browser.url == api(stack, "/")
    assert store.find_user(LEAVER[0]) is None and store.find_wiki("ui-leaving") is None
    browser.get(api(stack, "/app/"))
    browser.wait_for(lambda: "/auth/login" in browser.url)
    assert browser.csp_violations() == []


def test_forms_work_without_javascript(world, browsers, tmp_path):
    stack, store = world
    browser = signed_in(stack, browsers(), FRIEND)
    browser.cdp("Emulation.setScriptExecutionDisabled", {"value": True})
    browser.get(api(stack, "/app/"))
    browser.type("#slug", "no-script")
    browser.click("#create-wiki")
    shows(browser, "is ready")
    assert store.get_wiki("no-script").owner_did == FRIEND[0]
    browser.type("#label", "plain form")
    browser.click("#create-token")
    shows(browser, "only time it is shown")
    browser.screenshot(tmp_path / "no-script-token.png")
    assert browser.script(_COPY_HIDDEN) is True  # the Copy button needs script: none ran
    browser.click("#back-to-settings")
    browser.type("#confirm", "no-script")
    browser.click("#delete-wiki")
    shows(browser, "is deleted")
    assert store.find_wiki("no-script") is None
