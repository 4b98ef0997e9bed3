"""Who may use a wiki's MCP endpoint, what bad input gets, and how the transport survives."""

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytest_asyncio

from app.core.signing import SigningKey
from app.core.store import Store
from tests.conftest import oauth_grant
from tests.mcp.clients import KINDS
from tests.mcp.clients import connect
from tests.mcp.clients import held
from tests.mcp.clients import last_line
from tests.mcp.clients import rpc

pytestmark = [pytest.mark.stack, pytest.mark.asyncio]

ALPHA, BETA = "mcp-acc-alpha", "mcp-acc-beta"
OWNER = ("did:plc:mcp-acc-owner", "mcp-acc-owner.test")
READER = ("did:plc:mcp-acc-reader", "mcp-acc-reader.test")
WRITES = [
    ("write_page", {"path": "Home", "content": "vandalised"}),
    ("edit_page", {"path": "Home", "old_text": "Welcome", "new_text": "x"}),
    ("append_to_page", {"path": "Home", "content": "more"}),
    ("rename_page", {"path": "Home", "new_path": "Elsewhere"}),
    ("delete_page", {"path": "Home"}),
]


def host(slug):
    return f"{slug}.localhost"


@pytest.fixture(scope="module")
def wikis(stack):
    for did, handle in (OWNER, READER):
        last_line(stack.robot("user", "add", "--did", did, "--handle", handle))
    for slug in (ALPHA, BETA):
        last_line(stack.robot("wiki", "create", slug, "--owner", OWNER[0]))
    last_line(stack.robot("member", "add", ALPHA, "--user", READER[0], "--role", "viewer"))
    store = Store(stack.settings.database_url)
    yield SimpleNamespace(
        stack=stack,
        store=store,
        editor=store.create_token(ALPHA, OWNER[0], "editor")[1],
        viewer=store.create_token(ALPHA, READER[0], "viewer")[1],
        key=SigningKey.load(stack.settings.signing_key_path),
    )
    store.close()


@pytest_asyncio.fixture(params=KINDS)
async def editor(request, wikis):
    async with held(request.param, wikis.stack, host(ALPHA), wikis.editor) as session:
        yield session


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("tool", "arguments"), WRITES, ids=[w[0] for w in WRITES])
async def test_viewer_reads_but_every_write_says_role(wikis, kind, tool, arguments):
    async with connect(kind, wikis.stack, host(ALPHA), wikis.viewer) as viewer:
        read = await viewer.call("read_page", path="Home")
        denied = await viewer.call(tool, **arguments)
    assert not read.is_error
    assert denied.is_error and "your role in this wiki is viewer" in denied.text


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"path": "No/Such/Page"}, "does not exist"),
        ({"path": "Home", "revision": "not-a-revision"}, "revision"),
        ({"path": "Home", "revision": "0123456789abcdef"}, "revision"),
        ({"path": ""}, "required"),
        ({"path": "a/../b"}, ".."),
    ],
    ids=["missing-page", "malformed-revision", "unknown-revision", "empty-path", "dotdot"],
)
async def test_bad_read_arguments_are_tool_errors(editor, arguments, says):
    result = await editor.call("read_page", **arguments)
    assert result.is_error and says in result.text


async def test_huge_content_is_a_tool_error(editor):
    result = await editor.call("write_page", path="Huge", content="x" * (3 * 1024 * 1024))
    assert result.is_error and "at most" in result.text


async def test_out_of_range_limit_is_a_tool_error(editor):
    result = await editor.call("get_recent_changes", limit=0)
    assert result.is_error and "limit" in result.text


async def test_no_credentials_401_names_the_metadata(wikis):
    response = rpc(wikis.stack, host(ALPHA), None)
    prm = wikis.stack.settings.mcp_origin(ALPHA) + "/.well-known/oauth-protected-resource/mcp"
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(f'Bearer resource_metadata="{prm}"')


@pytest.mark.parametrize("suffix", ["", "/mcp"])
async def test_protected_resource_metadata_per_wiki(wikis, suffix):
    settings = wikis.stack.settings
    with wikis.stack.client("mcp", host=host(BETA)) as client:
        document = client.get("/.well-known/oauth-protected-resource" + suffix).json()
    assert document["resource"] == settings.mcp_url(BETA)
    assert document["authorization_servers"] == [settings.auth_origin]
    assert document["bearer_methods_supported"] == ["header"] and document["scopes_supported"]


async def test_unknown_wiki_host_is_404(wikis):
    assert rpc(wikis.stack, "nowiki-here.localhost", wikis.editor).status_code == 404


async def test_alpha_token_on_beta_is_401(wikis):
    assert rpc(wikis.stack, host(ALPHA), wikis.editor).status_code == 200
    assert rpc(wikis.stack, host(BETA), wikis.editor).status_code == 401


async def test_revoked_token_stops_at_once(wikis):
    token, secret = wikis.store.create_token(ALPHA, OWNER[0], "editor")
    async with connect("fastmcp", wikis.stack, host(ALPHA), secret) as session:
        assert not (await session.call("read_page", path="Home")).is_error
        last_line(wikis.stack.robot("token", "revoke", token.id))
        with pytest.raises(Exception):  # noqa: B017 - each client words a 401 its own way
            await session.call("read_page", path="Home")
    assert rpc(wikis.stack, host(ALPHA), secret).status_code == 401


async def test_removed_member_stops_at_once(wikis):
    did = "did:plc:mcp-acc-leaver"
    last_line(wikis.stack.robot("user", "add", "--did", did, "--handle", "leaver.test"))
    last_line(wikis.stack.robot("member", "add", ALPHA, "--user", did, "--role", "editor"))
    session = wikis.key.mint_session(did, "leaver.test", wikis.stack.settings.auth_origin, 300)
    _, secret = wikis.store.create_token(ALPHA, did, "editor")
    assert rpc(wikis.stack, host(ALPHA), secret).status_code == 200
    last_line(wikis.stack.robot("member", "remove", ALPHA, "--user", did))
    assert rpc(wikis.stack, host(ALPHA), secret).status_code == 401
    assert rpc(wikis.stack, host(ALPHA), session).status_code == 403


@pytest.mark.parametrize("kind", KINDS)
async def test_session_jwt_acts_as_its_user(wikis, kind):
    jwt = last_line(wikis.stack.robot("session", READER[0]))
    async with connect(kind, wikis.stack, host(ALPHA), jwt) as session:
        me = await session.call("whoami")
    assert (me.data["did"], me.data["role"], me.data["via"]) == (READER[0], "viewer", "session")


def access_token(wikis, audience_slug):
    settings = wikis.stack.settings
    audience = settings.mcp_url(audience_slug)
    grant = oauth_grant(wikis.store, OWNER[0], audience_slug, "t")
    return wikis.key.mint_access_token(
        OWNER[0], audience, settings.auth_origin, "wiki:read wiki:write", 300, "t", grant
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_oauth_access_token_for_this_wiki_works(wikis, kind):
    async with connect(kind, wikis.stack, host(ALPHA), access_token(wikis, ALPHA)) as session:
        me = await session.call("whoami")
    assert (me.data["role"], me.data["via"]) == ("admin", "oauth")


async def test_oauth_access_token_for_another_wiki_is_401(wikis):
    assert rpc(wikis.stack, host(ALPHA), access_token(wikis, BETA)).status_code == 401


async def test_restart_does_not_strand_an_open_client(editor, wikis):
    assert not (await editor.call("read_page", path="Home")).is_error
    started = time.monotonic()
    last_line(wikis.stack.robot("ctl", "restart", "mcp"))
    assert time.monotonic() - started < 9  # a shutdown stuck on open streams would take 10 s
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with wikis.stack.client("mcp") as client:
                if client.get("/healthz").status_code == 200:
                    break
        except Exception:  # connection refused while uvicorn starts
            time.sleep(0.2)
    assert not (await editor.call("read_page", path="Home")).is_error


async def test_many_large_reads_do_not_grow_memory(editor, wikis):
    content = "# Large\n\n" + "lorem ipsum " * 80_000
    assert not (await editor.call("write_page", path="Large", content=content)).is_error

    def rss():
        status = Path(f"/proc/{wikis.stack.pid('mcp')}/status").read_text()
        return int(
            next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]
        )

    for _ in range(5):
        assert not (await editor.call("read_page", path="Large")).is_error
    before = rss()
    for _ in range(60):
        await editor.call("read_page", path="Large")
    assert rss() - before < 20_000  # kB; 60 reads of 960 KB would be 57 MB if retained


async def test_no_stream_can_be_held_open(wikis):
    headers = {"Authorization": f"Bearer {wikis.editor}", "Accept": "text/event-stream"}
    with wikis.stack.client("mcp", host=host(ALPHA)) as client:
        response = client.get("/mcp", headers=headers)
    assert response.status_code == 405  # stateless: no standalone SSE stream to keep alive
