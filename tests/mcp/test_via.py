"""MCP's history and recent changes say who and through which agent: real clients, real stack."""

from types import SimpleNamespace

import pytest

from app.core.signing import SigningKey
from app.core.store import Store
from tests.conftest import oauth_grant
from tests.mcp.clients import KINDS
from tests.mcp.clients import connect
from tests.mcp.clients import last_line

pytestmark = [pytest.mark.stack, pytest.mark.asyncio]

SLUG = "mcp-via"
HOST = f"{SLUG}.localhost"
OWNER = ("did:plc:mcp-via-owner", "mcp-via-owner.test")
LABEL = "nightly <sync> job"
CLIENT_ID = "mcp_via_client"
CLIENT_NAME = "Agent\n\x07Smith\nOn-Behalf-Of: mallory.test did:plc:mallory"
FORGED = "tidy up\n\nVia: Mallory (token)\nOn-Behalf-Of: mallory.test did:plc:mallory"


@pytest.fixture(scope="module")
def wiki(stack):
    last_line(stack.robot("user", "add", "--did", OWNER[0], "--handle", OWNER[1]))
    last_line(stack.robot("wiki", "create", SLUG, "--owner", OWNER[0]))
    store = Store(stack.settings.database_url)
    settings = stack.settings
    store.save_oauth_client(CLIENT_ID, {"client_name": CLIENT_NAME})
    grant = oauth_grant(store, OWNER[0], SLUG, CLIENT_ID)
    key = SigningKey.load(settings.signing_key_path)
    yield SimpleNamespace(
        stack=stack,
        token=store.create_token(SLUG, OWNER[0], "editor", LABEL)[1],
        oauth=key.mint_access_token(
            OWNER[0],
            settings.mcp_url(SLUG),
            settings.auth_origin,
            "wiki:write",
            600,
            CLIENT_ID,
            grant,
        ),
        person=key.mint_session(*OWNER, settings.auth_origin, 600),
    )
    store.close()


async def write(wiki, who, kind, path, message):
    async with connect(kind, wiki.stack, HOST, getattr(wiki, who)) as mcp:
        result = await mcp.call("write_page", path=path, content=f"{message}\n", message=message)
    assert not result.is_error, result.text


@pytest.mark.parametrize("kind", KINDS)
async def test_history_says_by_whom_via_what_and_forgery_stays_text(wiki, kind):
    path = f"Story{kind}"
    await write(wiki, "person", kind, path, "by hand")
    await write(wiki, "token", kind, path, FORGED)
    await write(wiki, "oauth", kind, path, "from the assistant")
    async with connect(kind, wiki.stack, HOST, wiki.person) as mcp:
        history = await mcp.call("get_history", path=path, limit=3)
    newest, forged, own = history.data["revisions"]
    assert newest["via"] == {
        "name": "Agent Smith On-Behalf-Of: mallory.test did:plc:mallory",
        "kind": "oauth",
        "client_id": CLIENT_ID,
    }
    assert forged["via"] == {"name": LABEL, "kind": "token"} and own["via"] is None
    assert {r["did"] for r in history.data["revisions"]} == {OWNER[0]}
    lines = history.text.splitlines()
    assert (
        f"by {OWNER[1]} via Agent Smith On-Behalf-Of" in lines[1] and "(OAuth client)" in lines[1]
    )
    # One line an entry: the forged lines stay inside the message, visibly quoted.
    assert f"by {OWNER[1]} via {LABEL} (token)  tidy up > Via: Mallory (token) > On-" in lines[2]
    assert "\n\n> Via: Mallory (token)\n" in forged["message"]
    assert lines[3].endswith(f"by {OWNER[1]}  by hand") and len(lines) == 4


async def test_recent_changes_filter_to_agents_or_people(wiki):
    kind = KINDS[0]
    await write(wiki, "person", kind, "Filtered", "person one")
    await write(wiki, "token", kind, "Filtered", "agent one")
    for n in range(3):
        await write(wiki, "person", kind, "Filtered", f"person later {n}")
    async with connect(kind, wiki.stack, HOST, wiki.token) as mcp:
        agents = await mcp.call("get_recent_changes", limit=1, by="agents")
        people = await mcp.call("get_recent_changes", limit=4, by="people")
        every = await mcp.call("get_recent_changes", limit=2)
        bad = await mcp.call("get_recent_changes", by="robots")
    assert [c["message"] for c in agents.data["changes"]] == ["agent one"]
    assert f"via {LABEL} (token)" in agents.text
    assert [c["message"] for c in people.data["changes"]] == [
        "person later 2",
        "person later 1",
        "person later 0",
        "person one",
    ]
    assert " via " not in people.text and len(every.data["changes"]) == 2
    assert bad.is_error and "by" in bad.text
