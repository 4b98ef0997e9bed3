"""axe-core in chromium on every page of the platform's own UI: no serious or critical violation.

axe-core is pinned in tests/a11y/package-lock.json and installed by `make a11y` (part of
`make test`); the test injects axe.min.js through WebDriver and runs `axe.run()` on the page as
the browser rendered it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.core.store import Store
from app.core.wikis import create_wiki
from tests.browser import Browser
from tests.browser import browser_available
from tests.conftest import sign_in_at_apex

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(not browser_available(), reason="chromium not installed (make test does)"),
]

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
OWNER, MEMBER = ("did:plc:a11yowner", "a11y-owner.test"), ("did:plc:a11ymember", "a11y-member.test")
BLOCKING = ("serious", "critical")
_RUN_AXE = """
window.robotAxe = null;
axe.run(document, {resultTypes: ["violations"]}).then(function (result) {
  window.robotAxe = {passes: result.passes.length, violations: result.violations.map(function (v) {
    return {id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(function (n) { return n.target.join(" "); })};
  })};
}, function (error) { window.robotAxe = "axe failed: " + error; });
"""


@pytest.fixture(scope="module")
def world(stack):
    store = Store(stack.settings.database_url)
    for user in (OWNER, MEMBER):
        store.upsert_user(*user)
    create_wiki(stack.settings, store, "a11y-own", OWNER[0], "Owner's <notes>")
    create_wiki(stack.settings, store, "a11y-shared", MEMBER[0], "Shared notes")
    store.set_member("a11y-own", MEMBER[0], "editor")
    store.set_member("a11y-shared", OWNER[0], "viewer")
    store.create_token("a11y-own", OWNER[0], "editor", "laptop agent")
    yield stack
    store.close()


@pytest.fixture
def browser(browsers):
    return browsers()


def violations(browser: Browser) -> list[dict]:
    """Run axe-core on the current page; return its serious and critical violations."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make a11y` (make test does)")
    browser.script(AXE.read_text() + "\nreturn true;")
    browser.script(_RUN_AXE)
    deadline = time.monotonic() + 60
    while (found := browser.script("return window.robotAxe;")) is None:
        assert time.monotonic() < deadline, "axe.run() did not finish"
        time.sleep(0.2)
    assert isinstance(found, dict), found
    assert found["passes"] > 10, found  # axe really looked at this page
    return [violation for violation in found["violations"] if violation["impact"] in BLOCKING]


def check(browser: Browser, url: str, tmp_path: Path, name: str) -> None:
    browser.get(url)
    browser.screenshot(tmp_path / f"{name}.png")
    assert violations(browser) == [], name


def test_signed_out_pages(world, browser, tmp_path):
    check(browser, f"http://localhost:{world.port('api')}/", tmp_path, "landing")
    check(browser, f"http://localhost:{world.port('auth')}/auth/login", tmp_path, "login")


@pytest.mark.parametrize(
    ("user", "path"),
    [
        (OWNER, "/app/"),
        (OWNER, "/app/wiki/a11y-own"),
        (OWNER, "/app/wiki/a11y-shared"),
        (OWNER, "/app/account"),
        (OWNER, "/app/wiki/not-mine"),
        (MEMBER, "/app/"),
    ],
)
def test_signed_in_pages(world, browser, tmp_path, user, path):
    sign_in_at_apex(world, browser, user[0])
    check(
        browser,
        f"http://localhost:{world.port('api')}{path}",
        tmp_path,
        path.strip("/").replace("/", "-") or "root",
    )


@pytest.mark.parametrize(
    ("path", "field", "value", "button", "shown"),
    [
        ("/app/", "#slug", "admin", "#create-wiki", "is reserved"),  # an error next to a field
        ("/app/wiki/a11y-own", "#label", "a11y", "#create-token", "only time it is shown"),
    ],
)
def test_pages_after_a_form(world, browser, tmp_path, path, field, value, button, shown):
    sign_in_at_apex(world, browser, OWNER[0])
    browser.get(f"http://localhost:{world.port('api')}{path}")
    browser.type(field, value)
    browser.click(button)
    browser.wait_for(lambda: shown in browser.text())
    browser.screenshot(tmp_path / "after-form.png")
    assert violations(browser) == []


_FOCUSED = """
const element = document.activeElement;
const box = element.getBoundingClientRect();
const style = getComputedStyle(element);
return {id: element.id, text: element.textContent.trim(), left: box.left,
        outline: style.outlineStyle};
"""


def press_tab(browser: Browser) -> dict:
    for kind in ("keyDown", "keyUp"):
        browser.cdp(
            "Input.dispatchKeyEvent",
            {"type": kind, "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9},
        )
    return browser.script(_FOCUSED)


def test_keyboard_reaches_the_content_first_with_visible_focus(world, browser):
    sign_in_at_apex(world, browser, OWNER[0])
    browser.get(f"http://localhost:{world.port('api')}/app/")
    skip = press_tab(browser)
    assert skip["text"] == "Skip to the content" and skip["left"] >= 0
    assert skip["outline"] != "none"
    assert press_tab(browser)["text"] == "localhost"  # then the navbar, in reading order
