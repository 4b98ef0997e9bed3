"""A browser-based MCP client: chromium's fetch from a page of another origin to a wiki's /mcp."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx2
import pytest

from app.core.store import Store
from tests.browser import Browser
from tests.browser import _free_port
from tests.browser import browser_available
from tests.mcp.clients import last_line

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(not browser_available(), reason="chromium not installed (make test does)"),
]

SLUG = "mcp-cors-browser"
OWNER = ("did:plc:mcp-cors-owner", "mcp-cors-owner.test")
# Runs in the page: a preflighted POST with the credential, then one without it (401), and
# returns what the page's script may read of each.
FETCH_BOTH = """
const [url, token] = arguments;
return (async () => {
  const rpc = JSON.stringify({jsonrpc: "2.0", id: 1, method: "tools/list"});
  const headers = {"Content-Type": "application/json",
    "Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": "2025-06-18"};
  const answer = await fetch(url, {method: "POST", body: rpc,
    headers: {...headers, "Authorization": "Bearer " + token}});
  const denied = await fetch(url, {method: "POST", body: rpc, headers});
  return {status: answer.status, tools: (await answer.json()).result.tools.length,
    deniedStatus: denied.status, challenge: denied.headers.get("WWW-Authenticate")};
})();
"""


@pytest.fixture(scope="module")
def wiki(stack):
    last_line(stack.robot("user", "add", "--did", OWNER[0], "--handle", OWNER[1]))
    last_line(stack.robot("wiki", "create", SLUG, "--owner", OWNER[0]))
    store = Store(stack.settings.database_url)
    yield stack, store.create_token(SLUG, OWNER[0], "editor")[1]
    store.close()


@pytest.fixture(scope="module")
def page_origin(tmp_path_factory):
    """An origin other than the MCP service's: a static file server with one empty page."""
    root = tmp_path_factory.mktemp("other-origin")
    (root / "index.html").write_text("<!doctype html><title>client</title>")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    origin = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx2.get(origin + "/", timeout=2)
            break
        except httpx2.TransportError:
            time.sleep(0.1)
    yield origin
    server.terminate()
    server.wait(10)


@pytest.fixture
def browser():
    session = Browser()
    yield session
    session.close()


@pytest.mark.parametrize("path", ["/mcp", "/mcp/"])
def test_page_of_another_origin_calls_mcp_and_reads_the_challenge(wiki, page_origin, browser, path):
    stack, token = wiki
    browser.get(page_origin + "/")
    url = f"http://{SLUG}.localhost:{stack.port('mcp')}{path}"
    seen = browser.script(FETCH_BOTH, url, token)
    assert seen["status"] == 200 and seen["tools"] > 0
    assert seen["deniedStatus"] == 401
    assert seen["challenge"].startswith('Bearer resource_metadata="')
