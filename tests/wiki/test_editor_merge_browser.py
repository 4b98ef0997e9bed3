"""A person in Chromium's editor and their agent over MCP edit one page: nothing is lost.

The real stack (four services under supervisord), headless chromium, and a real MCP client
acting with a token of the same wiki. Zero CSP violations throughout.
"""

from __future__ import annotations

import asyncio
import subprocess
from contextlib import closing

import pytest

from app.core.locks import wiki_write_lock
from app.core.store import Store
from app.core.wikis import create_wiki
from tests.browser import BROWSER_ON_STACK
from tests.browser import Browser
from tests.mcp.clients import connect

pytestmark = BROWSER_ON_STACK

OWNER = ("did:plc:merge-browser-owner", "merge-browser-owner.test")
SLUG = "merge-browser"
HOST = f"{SLUG}.localhost"
PAGE = "Shared Plan"
BASE = "# Shared Plan\n\ntop line\n\nmiddle line\n\nbottom line\n"
SAVE = "#modal-commit input[type=submit]"


@pytest.fixture(scope="module")
def wiki(stack):
    """The stack and an editor's token of the owner's wiki, for the agent."""
    with closing(Store(stack.settings.database_url)) as store:
        store.upsert_user(*OWNER)
        create_wiki(stack.settings, store, SLUG, OWNER[0], "Merge Wiki")
        return stack, store.create_token(SLUG, OWNER[0], "editor")[1]


@pytest.fixture
def browser(wiki):
    stack, _ = wiki
    session = Browser()
    session.get(url(stack, "/healthz"))
    session.add_cookie("robot_session", stack.browser_session(OWNER[0], HOST))
    session.record_csp_violations()
    yield session
    session.close()


def url(stack, path="/"):
    return f"http://{HOST}:{stack.port('otterwiki')}{path}"


def agent(wiki, tool, **arguments):
    """One tool call of a real MCP client with the wiki's token; fails on a tool error."""
    stack, token = wiki

    async def call():
        async with connect("fastmcp", stack, HOST, token) as session:
            return await session.call(tool, **arguments)

    result = asyncio.run(call())
    assert not result.is_error, result.text
    return result


def page_text(wiki) -> str:
    return agent(wiki, "read_page", path=PAGE).content[-1].text


def commits(wiki) -> list[str]:
    repo = wiki[0].settings.repo_path(SLUG)
    log = subprocess.run(["git", "log", "--format=%H"], cwd=repo, capture_output=True, text=True)
    return log.stdout.split()


def open_editor(browser, wiki) -> None:
    browser.get(url(wiki[0], "/Shared%20Plan/edit"))
    browser.wait_for(lambda: browser.script("return typeof cm_editor !== 'undefined';"))


def type_text(browser, text: str) -> None:
    """Replace the editor's whole text, as a person editing it would end up with."""
    browser.script(
        "cm_editor.dispatch({changes: {from: 0, to: cm_editor.state.doc.length, "
        "insert: arguments[0]}});",
        text,
    )


def save(browser, message: str) -> None:
    browser.click("#save-page-btn")
    shown = f"return !!document.querySelector('{SAVE}').offsetParent;"
    browser.wait_for(lambda: browser.script(shown))
    browser.type("#commit-message", message)
    browser.click(SAVE)
    browser.wait_for(lambda: "/save" in browser.url or "/edit" not in browser.url)


def test_editor_and_agent_edit_one_page_and_nothing_is_lost(wiki, browser, tmp_path):
    agent(wiki, "write_page", path=PAGE, content=BASE)

    # The agent changes the bottom while the person has the editor open and changes the top.
    open_editor(browser, wiki)
    agent(wiki, "edit_page", path=PAGE, old_text="bottom line", new_text="bottom, by the agent")
    type_text(browser, BASE.replace("top line", "top, by the person"))
    save(browser, "top from the browser")
    browser.wait_for(lambda: "/save" not in browser.url and "/edit" not in browser.url)
    assert "your changes were merged with those made since by" in browser.text()
    assert OWNER[1] in browser.text()
    assert "top, by the person" in browser.text() and "bottom, by the agent" in browser.text()
    browser.screenshot(tmp_path / "merged.png")
    merged = page_text(wiki)
    assert "top, by the person" in merged and "bottom, by the agent" in merged

    # Now both change the middle: nothing is committed, the editor shows the conflict.
    open_editor(browser, wiki)
    agent(wiki, "edit_page", path=PAGE, old_text="middle line", new_text="middle, by the agent")
    before = commits(wiki)
    mine = merged.replace("middle line", "middle, <b>by the person</b>")
    type_text(browser, mine)
    save(browser, "middle from the browser")
    browser.wait_for(lambda: browser.script("return !!document.getElementById('robot-conflict');"))
    browser.wait_for(lambda: browser.script("return typeof cm_editor !== 'undefined';"))
    assert commits(wiki) == before
    panel = browser.script("return document.getElementById('robot-conflict').innerText;")
    assert "Not saved" in panel and "-middle, by the agent" in panel
    assert "+middle, <b>by the person</b>" in panel  # the person's markup shown as text
    assert browser.script("return cm_editor.state.doc.toString();").strip() == mine.strip()
    browser.screenshot(tmp_path / "conflict.png")

    # The person resolves it in the editor and saves: that is what the page holds now.
    resolved = mine.replace("middle, <b>by the person</b>", "middle, by the person and agent")
    type_text(browser, resolved)
    save(browser, "resolved")
    browser.wait_for(lambda: "/save" not in browser.url and "/edit" not in browser.url)
    assert page_text(wiki) == resolved
    assert len(commits(wiki)) == len(before) + 1
    assert browser.csp_violations() == []


def test_a_save_refused_for_a_busy_wiki_keeps_the_text_to_send_again(wiki, browser, tmp_path):
    """Eighteenth review: a save refused because the wiki's write lock stayed busy (503) showed
    a bare error page, and the text the person had typed was gone. The refusal page now holds
    the text and sends it again, with the form's token and revision, on one click."""
    agent(wiki, "write_page", path=PAGE, content=BASE)
    open_editor(browser, wiki)
    typed = BASE.replace("top line", "typed while busy </textarea><script>alert(1)</script>")
    type_text(browser, typed)
    before = commits(wiki)
    with wiki_write_lock(wiki[0].settings.wiki_dir(SLUG)):
        browser.click("#save-page-btn")
        shown = f"return !!document.querySelector('{SAVE}').offsetParent;"
        browser.wait_for(lambda: browser.script(shown))
        browser.type("#commit-message", "saved once free")
        browser.click(SAVE)
        browser.wait_for(lambda: "Send again" in browser.text(), timeout=60)
    assert "busy with another edit" in browser.text() and commits(wiki) == before
    kept = browser.script("return document.querySelector('textarea[name=content]').value;")
    assert kept.replace("\r\n", "\n").strip() == typed.strip()
    browser.screenshot(tmp_path / "refused.png")
    browser.click("form button[type=submit]")
    browser.wait_for(lambda: "/save" not in browser.url and "/edit" not in browser.url)
    assert page_text(wiki).strip() == typed.strip()
    assert len(commits(wiki)) == len(before) + 1
    assert browser.csp_violations() == []
