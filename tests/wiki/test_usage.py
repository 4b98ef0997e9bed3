"""Usage figures are real: every write, through every channel, updates them on the running stack.

Writes go through the web UI's forms (edit, upload), the page API (PUT, rename, DELETE) and MCP
(whose tools call the page API); the figures are read back from the management API and `robot
wiki list`, and checked against the wiki's files as git holds them at HEAD.
"""

from __future__ import annotations

import re
import subprocess
from types import SimpleNamespace

import pytest

from app.web.session_cookie import PLAIN_NAME
from tests.mcp.clients import connect
from tests.mcp.clients import last_line

pytestmark = pytest.mark.stack

SLUG = "usage-figures"
HOST = f"{SLUG}.localhost"
OWNER = ("did:plc:usage-owner", "usage-owner.test")


@pytest.fixture(scope="module")
def wiki(stack):
    last_line(stack.robot("user", "add", "--did", OWNER[0], "--handle", OWNER[1]))
    last_line(stack.robot("wiki", "create", SLUG, "--owner", OWNER[0]))
    token = last_line(stack.robot("token", "create", SLUG, "--user", OWNER[0], "--role", "editor"))
    session = last_line(stack.robot("session", OWNER[0]))
    api = stack.client("api")
    api.headers["Authorization"] = f"Bearer {session}"
    pages = stack.client("otterwiki", host=HOST)
    pages.headers["Authorization"] = f"Bearer {token}"
    web = stack.client("otterwiki", host=HOST)
    web.cookies.set(PLAIN_NAME, stack.browser_session(OWNER[0], HOST))
    return SimpleNamespace(stack=stack, token=token, api=api, pages=pages, web=web)


def figures(wiki) -> tuple[int, int, int]:
    """(page_count, size_bytes, last_change_at) as the management API shows them; the list and
    the wiki's own resource agree."""
    one = wiki.api.get(f"/api/wikis/{SLUG}")
    assert one.status_code == 200, one.text
    listed = [w for w in wiki.api.get("/api/wikis").json()["wikis"] if w["slug"] == SLUG]
    body = one.json()
    assert listed and all(listed[0][k] == body[k] for k in ("page_count", "size_bytes"))
    return body["page_count"], body["size_bytes"], body["last_change_at"]


def at_head(stack) -> tuple[int, int, int]:
    """What git says: .md files and bytes of every file at HEAD, HEAD's commit time."""
    repo = stack.settings.repo_path(SLUG)
    tree = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "-l", "-z", "--full-tree", "HEAD"],
        capture_output=True,
        check=True,
    ).stdout
    entries = [e.split(b"\t", 1) for e in tree.split(b"\0") if e]
    when = subprocess.run(
        ["git", "-C", str(repo), "log", "-1", "--format=%ct"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    pages = sum(path.endswith(b".md") for _, path in entries)
    size = sum(int(meta.split()[3]) for meta, _ in entries)
    return pages, size, int(when)


def form_post(wiki, form_path: str, post_path: str, **kwargs):
    """Post an Otterwiki form as a browser does: with the CSRF token of its page."""
    page = wiki.web.get(form_path)
    assert page.status_code == 200, page.text[:300]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    data = {**kwargs.pop("data", {}), "csrf_token": token}
    response = wiki.web.post(post_path, data=data, **kwargs)
    assert response.status_code in (200, 302), response.text[:300]
    return response


def test_a_new_wiki_shows_its_starter_pages(wiki):
    pages, size, when = figures(wiki)
    assert (pages, size, when) == at_head(wiki.stack)
    assert pages == 2 and size > 0  # Home and the Agent Guide


def test_web_edit_and_upload_update_the_figures(wiki):
    before = figures(wiki)
    content = "A page written in the browser.\n" * 10
    form_post(wiki, "/Garden/edit", "/Garden/save", data={"content": content, "commit": "web"})
    after_edit = figures(wiki)
    assert after_edit == at_head(wiki.stack)
    assert after_edit[0] == before[0] + 1 and after_edit[1] > before[1]
    photo = bytes(range(256)) * 40
    form_post(
        wiki,
        "/Garden/attachments",
        "/Garden/attachments",
        data={"message": "a photo"},
        files={"file": ("photo.bin", photo, "application/octet-stream")},
    )
    after_upload = figures(wiki)
    assert after_upload == at_head(wiki.stack)
    assert after_upload[:2] == (after_edit[0], after_edit[1] + len(photo))


def test_page_api_put_rename_delete_update_the_figures(wiki):
    start = figures(wiki)
    created = wiki.pages.put("/api/v1/pages/Api/One", json={"content": "x" * 500})
    assert created.status_code == 201, created.text
    assert figures(wiki)[:2] == (start[0] + 1, start[1] + 500)
    moved = wiki.pages.post("/api/v1/pages/Api/One/rename", json={"to": "Api/Two"})
    assert moved.status_code == 200, moved.text
    assert figures(wiki)[:2] == (start[0] + 1, start[1] + 500)
    gone = wiki.pages.delete("/api/v1/pages/Api/Two")
    assert gone.status_code == 200, gone.text
    assert figures(wiki) == at_head(wiki.stack)
    assert figures(wiki)[:2] == start[:2]


def test_page_api_attachments_update_the_figures(wiki):
    assert wiki.pages.put("/api/v1/pages/Api/Files", json={"content": "f"}).status_code == 201
    start = figures(wiki)
    data = bytes(range(256)) * 8
    added = wiki.pages.put("/api/v1/pages/Api/Files/attachments/d.bin", content=data)
    assert added.status_code == 201, added.text
    assert figures(wiki) == at_head(wiki.stack)
    assert figures(wiki)[:2] == (start[0], start[1] + len(data))
    gone = wiki.pages.delete("/api/v1/pages/Api/Files/attachments/d.bin")
    assert gone.status_code == 200, gone.text
    assert figures(wiki)[:2] == start[:2] and figures(wiki) == at_head(wiki.stack)


def test_a_refused_write_changes_nothing(wiki):
    before = figures(wiki)
    refused = wiki.pages.put("/api/v1/pages/Api/Bad", json={"content": 5})
    assert refused.status_code == 400
    assert figures(wiki) == before


@pytest.mark.asyncio
async def test_mcp_writes_update_the_figures(wiki):
    before = figures(wiki)
    async with connect("sdk", wiki.stack, HOST, wiki.token) as mcp:
        written = await mcp.call("write_page", path="Agents/Notes", content="y" * 300)
        assert not written.is_error, written.text
        after_write = figures(wiki)
        appended = await mcp.call("append_to_page", path="Agents/Notes", content="z" * 50)
        assert not appended.is_error, appended.text
    assert after_write[:2] == (before[0] + 1, before[1] + 300)
    after_append = figures(wiki)
    assert after_append == at_head(wiki.stack) and after_append[1] > after_write[1]


def test_robot_wiki_list_shows_the_figures(wiki):
    pages, size, _ = figures(wiki)
    line = next(
        line for line in wiki.stack.robot("wiki", "list").stdout.splitlines() if SLUG in line
    )
    assert f" {pages} pages " in line and "changed -" not in line
    assert _size_text(size) in line


def _size_text(size: int) -> str:
    return f"{size} B" if size < 1024 else f"{size / 1024:.1f} KB"
