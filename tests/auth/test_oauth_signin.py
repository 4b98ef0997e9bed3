"""The MCP OAuth dance with the real sign-in: /authorize sends the browser through ATProto
login (against the fake ATProto network) and back to the consent page, in headless Chromium."""

import time
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from app.core.store import Store
from tests.auth.test_oauth_flow import BrowserPerson
from tests.auth.test_oauth_flow import connected
from tests.browser import Browser
from tests.browser import browser_available
from tests.mcp.clients import last_line

pytestmark = [
    pytest.mark.stack,
    pytest.mark.asyncio,
    pytest.mark.skipif(not browser_available(), reason="chromium not installed (make test does)"),
]


class SigningInPerson(BrowserPerson):
    """Signs in with their ATProto account when /authorize asks, then approves the consent."""

    def __init__(self, env, did: str, browser: Browser, fake_net):
        super().__init__(env, did, browser)
        self.fake_net = fake_net

    def _consent(self, authorization_url: str) -> None:
        browser = self.browser
        browser.get(authorization_url)
        assert urlsplit(browser.url).path == "/auth/login"
        browser.type("#account", self.did)
        browser.click("button[type=submit]")
        _wait(lambda: browser.url.startswith(self.fake_net.origin + "/oauth/authorize?"))
        browser.click("#approve")
        consent = self.env.stack.settings.auth_origin + "/auth/authorize?"
        _wait(lambda: browser.url.startswith(consent))
        self.consent_page = browser.text()
        browser.click("button[value=approve]")
        _wait(lambda: "code=" in browser.url)
        self.callback = browser.url


def _wait(ready, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "the browser did not get there"
        time.sleep(0.1)


async def test_sign_in_then_consent_then_tool_call(make_stack, fake_net):
    stack = make_stack(**fake_net.stack_env())
    did = fake_net.add_account("carol.test")
    last_line(stack.robot("user", "add", "--did", did, "--handle", "carol.test"))
    last_line(stack.robot("wiki", "create", "signin-wiki", "--owner", did))
    store, browser = Store(stack.settings.database_url), Browser()
    env = SimpleNamespace(stack=stack, store=store)
    landing = f"http://127.0.0.1:{stack.port('auth')}/healthz"
    try:
        person = SigningInPerson(env, did, browser, fake_net)
        async with connected(env, person, slug="signin-wiki", callback=landing) as session:
            written = await session.client.call_tool("write_page", {"path": "Hi", "content": "x"})
    finally:
        browser.close()
        store.close()
    assert not written.is_error and "signin-wiki.localhost" in person.consent_page
    assert person.answer["iss"] == stack.settings.auth_origin
