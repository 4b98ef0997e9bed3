"""MCP interop as clients in the field behave: CORS, `/mcp/`, and every request form.

Each bad form must get a short JSON-RPC error object (`jsonrpc`, `id`, `error` with `code` and
`message`) and the HTTP status the streamable HTTP transport's spec gives: never a validation
dump, a plain-text body, a redirect or a 500.
"""

from types import SimpleNamespace

import pytest

from app.core.store import Store
from tests.mcp.clients import KINDS
from tests.mcp.clients import connect
from tests.mcp.clients import last_line

pytestmark = [pytest.mark.stack, pytest.mark.asyncio]

SLUG = "mcp-interop"
HOST = f"{SLUG}.localhost"
OWNER = ("did:plc:mcp-interop-owner", "mcp-interop-owner.test")
ORIGIN = "https://inspector.example"
PRM = "/.well-known/oauth-protected-resource"
ACCEPT = "application/json, text/event-stream"
TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
PING = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
NOTIFICATION = {"jsonrpc": "2.0", "method": "notifications/initialized"}
ALLOWED_HEADERS = {
    "authorization",
    "content-type",
    "accept",
    "mcp-protocol-version",
    "mcp-session-id",
    "last-event-id",
}


@pytest.fixture(scope="module")
def wiki(stack):
    last_line(stack.robot("user", "add", "--did", OWNER[0], "--handle", OWNER[1]))
    last_line(stack.robot("wiki", "create", SLUG, "--owner", OWNER[0]))
    store = Store(stack.settings.database_url)
    yield SimpleNamespace(stack=stack, token=store.create_token(SLUG, OWNER[0], "editor")[1])
    store.close()


def post(wiki, body=None, path="/mcp", content=None, **headers):
    """POST to the wiki's MCP endpoint with its token; `headers` (underscores for dashes) win."""
    sent = {"Accept": ACCEPT, "Content-Type": "application/json"}
    sent["Authorization"] = f"Bearer {wiki.token}"
    sent.update({name.replace("_", "-"): value for name, value in headers.items()})
    dropped = [name for name, value in sent.items() if value is None]
    with wiki.stack.client("mcp", host=HOST) as client:
        request = client.build_request(
            "POST",
            path,
            json=body,
            content=content,
            headers={name: value for name, value in sent.items() if value is not None},
        )
        for name in dropped:
            request.headers.pop(name, None)  # also the client's own default (Accept: */*)
        return client.send(request)


def send(wiki, method, path="/mcp", host=HOST, **headers):
    """Send a bodiless request; `headers` (underscores for dashes) as given."""
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    with wiki.stack.client("mcp", host=host) as client:
        return client.request(method, path, headers=sent)


def rpc_error(response, status: int, code: int, message_id=None) -> str:
    """Assert `response` is a short JSON-RPC error object; return its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"jsonrpc", "id", "error"} and body["jsonrpc"] == "2.0"
    assert body["id"] == message_id
    assert set(body["error"]) <= {"code", "message", "data"} and body["error"]["code"] == code
    assert len(response.content) < 300  # no validation dump
    return body["error"]["message"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", ["/mcp", "/mcp/"])
async def test_real_clients_work_on_both_spellings(wiki, kind, path):
    async with connect(kind, wiki.stack, HOST, wiki.token, path=path) as session:
        names = {tool.name for tool in await session.tools()}
        whoami = await session.call("whoami")
    assert "read_page" in names
    assert not whoami.is_error and OWNER[1] in whoami.text


async def test_trailing_slash_is_served_not_redirected(wiki):
    plain, slashed = post(wiki, TOOLS_LIST), post(wiki, TOOLS_LIST, path="/mcp/")
    assert slashed.status_code == 200 and "location" not in slashed.headers
    assert slashed.json() == plain.json()


@pytest.mark.parametrize("path", ["/mcp/", "/mcp//", "/%6Dcp", "/mcp%2F"])
async def test_every_spelling_that_reaches_the_endpoint_needs_the_token(wiki, path):
    response = post(wiki, TOOLS_LIST, path=path, Authorization=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer resource_metadata=")


@pytest.mark.parametrize("path", ["/MCP", "/mcp/x", "/mcpx"])
async def test_other_spellings_are_not_the_endpoint(wiki, path):
    assert post(wiki, TOOLS_LIST, path=path).status_code == 404


@pytest.mark.parametrize("path", ["/mcp", "/mcp/", PRM, f"{PRM}/mcp"])
async def test_cors_preflight_is_204_without_auth(wiki, path):
    asked = "authorization, content-type, mcp-protocol-version, mcp-session-id, last-event-id"
    response = send(
        wiki,
        "OPTIONS",
        path,
        Origin=ORIGIN,
        Access_Control_Request_Method="POST",
        Access_Control_Request_Headers=asked,
    )
    assert response.status_code == 204 and response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert ALLOWED_HEADERS <= allowed
    assert {"GET", "POST", "DELETE"} <= set(
        response.headers["access-control-allow-methods"].split(", ")
    )
    assert response.headers["access-control-max-age"] == "86400"
    assert "access-control-allow-credentials" not in response.headers


async def test_cors_preflight_for_an_unlisted_header_is_refused(wiki):
    response = send(
        wiki,
        "OPTIONS",
        Origin=ORIGIN,
        Access_Control_Request_Method="POST",
        Access_Control_Request_Headers="x-secret",
    )
    assert response.status_code == 400 and "headers" in response.text


@pytest.mark.parametrize(
    ("method", "path", "host", "status"),
    [
        ("POST", "/mcp", HOST, 401),
        ("GET", f"{PRM}/mcp", HOST, 200),
        ("GET", PRM, "no-such-wiki.localhost", 404),
    ],
    ids=["401", "metadata", "unknown-host"],
)
async def test_cors_headers_on_every_answer(wiki, method, path, host, status):
    response = send(wiki, method, path, host=host, Origin=ORIGIN)
    assert response.status_code == status
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert exposed == {"mcp-session-id", "www-authenticate"}
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    "accept", [ACCEPT, "application/json", "*/*", None], ids=["both", "json", "any", "missing"]
)
async def test_accept_forms_a_client_may_send(wiki, accept):
    response = post(wiki, TOOLS_LIST, Accept=accept)
    assert response.status_code == 200 and response.json()["result"]["tools"]


async def test_accept_without_json_is_406(wiki):
    rpc_error(post(wiki, TOOLS_LIST, Accept="text/event-stream"), 406, -32600)


@pytest.mark.parametrize("version", ["2025-03-26", "2025-06-18", "2025-11-25"])
async def test_announced_protocol_versions_are_served(wiki, version):
    response = post(wiki, TOOLS_LIST, Mcp_Protocol_Version=version)
    assert response.status_code == 200 and response.json()["result"]["tools"]


async def test_unsupported_protocol_version_is_400(wiki):
    message = rpc_error(post(wiki, TOOLS_LIST, Mcp_Protocol_Version="1999-01-01"), 400, -32022)
    assert message == "Unsupported protocol version"


async def test_initialize_announces_the_revision_asked_for(wiki):
    params = {"protocolVersion": "2025-03-26", "capabilities": {}}
    params["clientInfo"] = {"name": "raw", "version": "1"}
    response = post(wiki, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
    assert response.json()["result"]["protocolVersion"] == "2025-03-26"


async def test_wrong_content_type_is_415(wiki):
    response = post(
        wiki, content=b'{"jsonrpc":"2.0","id":1,"method":"ping"}', Content_Type="text/plain"
    )
    assert "Content-Type" in rpc_error(response, 415, -32600)


@pytest.mark.parametrize(
    "content", [b'{"jsonrpc":', b"\xff\xfe", b""], ids=["cut", "binary", "empty"]
)
async def test_invalid_json_is_parse_error(wiki, content):
    assert rpc_error(post(wiki, content=content), 400, -32700).startswith("Parse error")


@pytest.mark.parametrize(
    ("body", "message_id"),
    [({"foo": 1}, None), ({"jsonrpc": "2.0", "id": 4, "method": 5}, 4), ("text", None), (3, None)],
    ids=["no-jsonrpc", "method-not-string", "string", "number"],
)
async def test_json_that_is_not_jsonrpc_is_invalid_request(wiki, body, message_id):
    assert rpc_error(post(wiki, body), 400, -32600, message_id).startswith("Invalid Request")


@pytest.mark.parametrize(
    "raw_id",
    ['{"a":1}', "true", "false", "1e400", "[1]", "1.5", "null"],
    ids=["object", "true", "false", "huge", "list", "fraction", "null"],
)
async def test_an_unusable_id_is_invalid_request_not_a_notification(wiki, raw_id):
    # Raw bytes: 1e400 is valid JSON (it decodes to infinity) but no JSON encoder writes it.
    content = f'{{"jsonrpc":"2.0","id":{raw_id},"method":"ping"}}'.encode()
    response = post(wiki, content=content, Origin=ORIGIN)
    assert "id must be" in rpc_error(response, 400, -32600)
    assert response.headers["access-control-allow-origin"] == "*"


async def test_an_unusable_id_in_a_batch_is_answered_by_its_element(wiki):
    bad = {"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}
    response = post(wiki, [PING, bad], Mcp_Protocol_Version="2025-03-26")
    assert response.status_code == 200
    answers = response.json()
    assert answers[0] == {"jsonrpc": "2.0", "id": 2, "result": {}}
    assert answers[1]["id"] is None and answers[1]["error"]["code"] == -32600


async def test_unknown_method_is_method_not_found(wiki):
    response = post(wiki, {"jsonrpc": "2.0", "id": 7, "method": "no/such"})
    rpc_error(response, 200, -32601, 7)


async def test_bad_params_are_invalid_params(wiki):
    body = {"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": 5}}
    rpc_error(post(wiki, body), 200, -32602, 8)


@pytest.mark.parametrize(
    "body",
    [NOTIFICATION, {"jsonrpc": "2.0", "id": 3, "result": {}}],
    ids=["notification", "response"],
)
async def test_notifications_and_responses_are_202(wiki, body):
    response = post(wiki, body)
    assert response.status_code == 202 and response.content == b""


@pytest.mark.parametrize("version", [None, "2025-03-26"], ids=["no-header", "2025-03-26"])
async def test_batch_is_answered_per_element_in_2025_03_26(wiki, version):
    bad = {"jsonrpc": "2.0", "id": "x", "method": "no/such"}
    response = post(
        wiki, [TOOLS_LIST, NOTIFICATION, PING, {"foo": 1}, bad], Mcp_Protocol_Version=version
    )
    answers = {answer["id"]: answer for answer in response.json()}
    assert response.status_code == 200 and set(answers) == {1, 2, None, "x"}
    assert answers[1]["result"]["tools"] and answers[2]["result"] == {}
    assert answers[None]["error"]["code"] == -32600 and answers["x"]["error"]["code"] == -32601


async def test_batch_of_notifications_only_is_202(wiki):
    response = post(wiki, [NOTIFICATION, NOTIFICATION])
    assert response.status_code == 202 and response.content == b""


async def test_initialize_in_a_batch_is_invalid_request(wiki):
    initialize = {"jsonrpc": "2.0", "id": 9, "method": "initialize", "params": {}}
    (answer,) = post(wiki, [initialize]).json()
    assert answer["id"] == 9 and answer["error"]["code"] == -32600


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
async def test_batch_is_invalid_request_after_2025_03_26(wiki, version):
    message = rpc_error(post(wiki, [PING], Mcp_Protocol_Version=version), 400, -32600)
    assert "batch" in message


@pytest.mark.parametrize("size", [0, 51], ids=["empty", "over-50"])
async def test_empty_or_huge_batch_is_invalid_request(wiki, size):
    rpc_error(post(wiki, [PING] * size), 400, -32600)


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
async def test_other_methods_are_405_with_allow(wiki, method):
    headers = {"Authorization": f"Bearer {wiki.token}", "Accept": "text/event-stream"}
    response = send(wiki, method, "/mcp", Mcp_Session_Id="abc", **headers)
    rpc_error(response, 405, -32600)
    assert response.headers["allow"] == "POST, OPTIONS"


async def test_plain_options_is_204_with_allow(wiki):
    response = send(wiki, "OPTIONS", "/mcp/")
    assert response.status_code == 204 and response.headers["allow"] == "POST, OPTIONS"


async def test_2026_07_28_request_passes_to_the_sdk(wiki):
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {"jsonrpc": "2.0", "id": 5, "method": "server/discover", "params": {"_meta": meta}}
    response = post(wiki, body, Mcp_Protocol_Version="2026-07-28", Mcp_Method="server/discover")
    assert response.status_code == 200
    assert response.json()["result"]["supportedVersions"] == ["2026-07-28"]


async def test_2026_07_28_batch_is_invalid_request(wiki):
    response = post(wiki, [PING], Mcp_Protocol_Version="2026-07-28")
    rpc_error(response, 400, -32600)


async def test_chunked_body_over_the_cap_is_413(wiki):
    def chunks():
        for _ in range(9):
            yield b" " * (1024 * 1024)

    response = post(wiki, content=chunks(), Origin=ORIGIN)
    assert rpc_error(response, 413, -32600) == "Invalid Request: request body over 8 MiB"
    assert response.headers["access-control-allow-origin"] == "*"


async def test_declared_body_over_the_cap_is_a_jsonrpc_413(wiki):
    response = post(wiki, content=b" " * (9 * 1024 * 1024), Origin=ORIGIN)
    assert rpc_error(response, 413, -32600) == "Invalid Request: request body over 8 MiB"
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("params", [{}, {"protocolVersion": 5}], ids=["empty", "bad-version"])
async def test_initialize_with_bad_params_is_a_short_error(wiki, params):
    body = {"jsonrpc": "2.0", "id": 6, "method": "initialize", "params": params}
    rpc_error(post(wiki, body), 200, -32602, 6)


@pytest.mark.parametrize("arguments", [[1], "path", 5], ids=["list", "string", "number"])
async def test_tools_call_arguments_not_an_object_is_invalid_params(wiki, arguments):
    params = {"name": "read_page", "arguments": arguments}
    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": params}
    rpc_error(post(wiki, body), 200, -32602, 9)
