"""Absurdly nested JSON, wherever a caller can put JSON, is a 4xx on every service, never a 500.

Python's json parser raises RecursionError (not ValueError) a few thousand levels down, and a
4 KB run of brackets gets there: in a request body, and in either part of a compact JWT that
we read before verifying it (its `typ` to pick the credential kind, its `aud` to pick the wiki).
Found by a review: a Bearer header of brackets answered 500 on MCP and the page API, and so
did /auth/revoke with such a token.
"""

from __future__ import annotations

import base64

import pytest

from tests.mcp.clients import last_line

pytestmark = pytest.mark.stack

SLUG = "nested-json"
OWNER = ("did:plc:nested-json-owner", "nested-json-owner.test")
MCP_ACCEPT = "application/json, text/event-stream"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


ARRAYS = b"[" * 3000
OBJECTS = b'{"a":' * 3000
GOOD_HEADER = _b64(b'{"alg":"ES256","typ":"at+jwt"}')
# Members of the kind: brackets or objects, in the header or in the claims, and plain bodies.
HOSTILE_BEARERS = {
    "header of arrays": f"{_b64(ARRAYS)}.{GOOD_HEADER}.x",
    "header of objects": f"{_b64(OBJECTS)}.{GOOD_HEADER}.x",
    "claims of arrays": f"{GOOD_HEADER}.{_b64(ARRAYS)}.x",
    "claims of objects": f"{GOOD_HEADER}.{_b64(OBJECTS)}.x",
}
HOSTILE_BODIES = {"arrays": ARRAYS, "objects": OBJECTS}


@pytest.fixture(scope="module")
def world(stack):
    last_line(stack.robot("user", "add", "--did", OWNER[0], "--handle", OWNER[1]))
    last_line(stack.robot("wiki", "create", SLUG, "--owner", OWNER[0]))
    token = last_line(stack.robot("token", "create", SLUG, "--user", OWNER[0], "--role", "admin"))
    return stack, token


@pytest.fixture(scope="module")
def client_id(world):
    stack, _token = world
    metadata = {"redirect_uris": ["http://127.0.0.1:9/callback"], "client_name": "nested"}
    metadata["token_endpoint_auth_method"] = "none"
    with stack.client("auth") as auth:
        answer = auth.post("/auth/register", json=metadata)
    assert answer.status_code == 201, answer.text
    return answer.json()["client_id"]


def _refused(answer) -> None:
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert "Traceback" not in answer.text


@pytest.mark.parametrize("bearer", HOSTILE_BEARERS.values(), ids=HOSTILE_BEARERS.keys())
def test_a_bearer_of_nested_json_is_refused_on_every_service(world, bearer):
    stack, _token = world
    headers = {"Authorization": f"Bearer {bearer}"}
    wiki_host = stack.settings.wiki_host(SLUG)
    with stack.client("mcp", host=wiki_host) as mcp:
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        _refused(mcp.post("/mcp", json=ping, headers={**headers, "Accept": MCP_ACCEPT}))
    with stack.client("otterwiki", host=wiki_host) as wiki:
        _refused(wiki.get("/api/v1/pages", headers=headers))
        _refused(wiki.get("/", headers=headers))
    with stack.client("api") as api:
        _refused(api.get("/api/wikis", headers=headers))
        _refused(api.get("/api/account/sessions", headers=headers))


@pytest.mark.parametrize("token", HOSTILE_BEARERS.values(), ids=HOSTILE_BEARERS.keys())
def test_revoking_a_token_of_nested_json_answers_as_for_any_unknown_token(world, client_id, token):
    stack, _token = world
    form = {"token": token, "client_id": client_id}
    # RFC 7009 §2.2: an invalid token is answered 200, like a revoked one.
    with stack.client("auth") as auth:
        answer = auth.post("/auth/revoke", data=form)
        assert answer.status_code == 200, answer.text
    with stack.client("mcp", host=stack.settings.wiki_host(SLUG)) as mcp:
        answer = mcp.post("/revoke", data=form)
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_a_body_of_nested_json_is_refused_on_every_json_endpoint(world, body):
    stack, token = world
    json_type = {"Content-Type": "application/json"}
    wiki_host = stack.settings.wiki_host(SLUG)
    with stack.client("auth") as auth:
        _refused(auth.post("/auth/register", content=body, headers=json_type))
    with stack.client("mcp", host=wiki_host) as mcp:
        headers = {**json_type, "Accept": MCP_ACCEPT, "Authorization": f"Bearer {token}"}
        _refused(mcp.post("/mcp", content=body, headers=headers))
        _refused(mcp.post("/register", content=body, headers=json_type))
    with stack.client("otterwiki", host=wiki_host) as wiki:
        headers = {**json_type, "Authorization": f"Bearer {token}"}
        _refused(wiki.put("/api/v1/pages/Nested", content=body, headers=headers))
    session = last_line(stack.robot("session", OWNER[0]))
    with stack.client("api") as api:
        headers = {**json_type, "Authorization": f"Bearer {session}"}
        _refused(api.post("/api/wikis", content=body, headers=headers))
        _refused(api.patch(f"/api/wikis/{SLUG}", content=body, headers=headers))
