"""upload_attachment and delete_attachment through two real MCP clients against the stack."""

import base64
import subprocess
from types import SimpleNamespace

import pytest
import pytest_asyncio

from tests.mcp.clients import KINDS
from tests.mcp.clients import held
from tests.mcp.clients import last_line

pytestmark = [pytest.mark.stack, pytest.mark.asyncio]

SLUG = "mcp-attach"
HOST = f"{SLUG}.localhost"
OWNER = ("did:plc:mcp-attach-owner", "mcp-attach-owner.test")
VIEWER = ("did:plc:mcp-attach-viewer", "mcp-attach-viewer.test")
BINARY = bytes(range(256)) * 2


@pytest.fixture(scope="module")
def wiki(stack):
    for did, handle in (OWNER, VIEWER):
        last_line(stack.robot("user", "add", "--did", did, "--handle", handle))
    last_line(stack.robot("wiki", "create", SLUG, "--owner", OWNER[0]))
    last_line(stack.robot("member", "add", SLUG, "--user", VIEWER[0], "--role", "viewer"))
    tokens = {
        role: last_line(stack.robot("token", "create", SLUG, "--user", did, "--role", role))
        for did, role in ((OWNER[0], "editor"), (VIEWER[0], "viewer"))
    }
    return SimpleNamespace(stack=stack, tokens=tokens, repo=stack.settings.repo_path(SLUG))


@pytest_asyncio.fixture(params=KINDS)
async def mcp(request, wiki):
    async with held(request.param, wiki.stack, HOST, wiki.tokens["editor"]) as session:
        session.page = f"{request.param.capitalize()}/Files"
        result = await session.call("write_page", path=session.page, content="files below\n")
        assert not result.is_error, result.text
        yield session


def state(wiki) -> tuple[str, str]:
    """HEAD and the working tree's status: equal before and after means nothing was written."""

    def git(*args):
        return subprocess.run(["git", *args], cwd=wiki.repo, capture_output=True, text=True).stdout

    return git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=all")


async def test_upload_read_replace_delete(mcp, wiki):
    encoded = base64.b64encode(BINARY).decode()
    added = await mcp.call(
        "upload_attachment", path=mcp.page, name="data.bin", content=encoded, encoding="base64"
    )
    assert not added.is_error, added.text
    assert added.data["created"] is True and added.data["size"] == len(BINARY)
    assert f"Attached data.bin to {mcp.page}" in added.text
    read = await mcp.call("read_attachment", path=mcp.page, name="data.bin")
    assert base64.b64decode(read.content[0].resource.blob) == BINARY
    text = await mcp.call(
        "upload_attachment", path=mcp.page, name="notes.txt", content="Grüße\n", message="notes"
    )
    assert (await mcp.call("read_attachment", path=mcp.page, name="notes.txt")).text == "Grüße\n"
    replaced = await mcp.call("upload_attachment", path=mcp.page, name="notes.txt", content="2")
    assert replaced.data["created"] is False and replaced.data["revision"] != text.data["revision"]
    listed = await mcp.call("list_attachments", path=mcp.page)
    assert {a["name"] for a in listed.data["attachments"]} == {"data.bin", "notes.txt"}
    for name in ("data.bin", "notes.txt"):
        deleted = await mcp.call("delete_attachment", path=mcp.page, name=name, message="bye")
        assert not deleted.is_error and deleted.data["name"] == name
    assert (await mcp.call("list_attachments", path=mcp.page)).data["attachments"] == []
    gone = await mcp.call("read_attachment", path=mcp.page, name="notes.txt")
    assert gone.is_error


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"name": "../escape.txt"}, "slashes"),
        ({"name": ".htaccess"}, "must not start with '.'"),
        ({"name": "page.md"}, "are pages"),
        ({"name": "a\nb"}, "control characters"),
        ({"name": "x" * 300}, "longer than"),
        ({"content": "not base64!", "encoding": "base64"}, "not valid base64"),
        ({"path": "No/Such/Page"}, "does not exist"),
    ],
)
async def test_bad_uploads_are_tool_errors_and_write_nothing(mcp, wiki, arguments, says):
    before = state(wiki)
    call = {"path": mcp.page, "name": "ok.txt", "content": "x", **arguments}
    result = await mcp.call("upload_attachment", **call)
    assert result.is_error and says in result.text
    assert state(wiki) == before


async def test_a_viewer_gets_a_tool_error(wiki):
    async with held("fastmcp", wiki.stack, HOST, wiki.tokens["viewer"]) as viewer:
        before = state(wiki)
        added = await viewer.call("upload_attachment", path="Home", name="v.txt", content="x")
        deleted = await viewer.call("delete_attachment", path="Home", name="v.txt")
    assert added.is_error and "your role in this wiki is viewer" in added.text
    assert deleted.is_error and "viewer" in deleted.text
    assert state(wiki) == before


async def test_the_tools_say_they_change_the_wiki(mcp):
    tools = {tool.name: tool for tool in await mcp.tools()}
    for name in ("upload_attachment", "delete_attachment"):
        assert tools[name].annotations.read_only_hint is False
        assert tools[name].annotations.destructive_hint is True
    schema = tools["upload_attachment"].input_schema
    assert schema["properties"]["encoding"]["enum"] == ["text", "base64"]
