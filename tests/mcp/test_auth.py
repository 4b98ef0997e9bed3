import time

import httpx2
import pytest
from starlette.responses import JSONResponse

from app.core.errors import Forbidden
from app.core.errors import Unauthorized
from app.core.identity import ANONYMOUS
from app.core.signing import ACCESS_TOKEN_TYP
from app.mcp.auth import McpAuth
from app.mcp.auth import admit_writes
from app.mcp.auth import verify_caller
from tests.conftest import oauth_grant

ALPHA = "alpha.localhost"


def access_token(platform, did, slug="alpha", ttl=300, issuer=None):
    return platform.key.mint_access_token(
        did,
        platform.settings.mcp_url(slug),
        issuer or platform.settings.auth_origin,
        "wiki:read wiki:write",
        ttl,
        "client-1",
        oauth_grant(platform.store, did, slug, "client-1"),
    )


def test_access_token_for_this_wiki_is_accepted(wikis, users):
    caller = verify_caller(wikis, "alpha", f"Bearer {access_token(wikis, users[0])}")
    assert (caller.did, caller.role, caller.via) == (users[0], "admin", "oauth")


@pytest.mark.parametrize(
    "mint",
    [
        lambda p, did: access_token(p, did, slug="beta"),
        lambda p, did: access_token(p, did, ttl=-3600),
        lambda p, did: access_token(p, did, issuer="https://evil.example"),
    ],
    ids=["other-wiki-audience", "expired", "wrong-issuer"],
)
def test_bad_access_token_is_rejected(wikis, users, mint):
    with pytest.raises(Unauthorized):
        verify_caller(wikis, "alpha", f"Bearer {mint(wikis, users[0])}")


def test_access_token_claims_with_wrong_typ_rejected(wikis, users):
    claims = {
        "iss": wikis.settings.auth_origin,
        "sub": users[0],
        "aud": wikis.settings.mcp_url("alpha"),
        "exp": int(time.time()) + 300,
    }
    with pytest.raises(Unauthorized):
        verify_caller(wikis, "alpha", f"Bearer {wikis.key.sign(claims, 'JWT')}")


def test_access_token_typ_with_session_audience_rejected(wikis, users):
    claims = {
        "iss": wikis.settings.auth_origin,
        "sub": users[0],
        "aud": "robot:session",
        "exp": int(time.time()) + 300,
    }
    with pytest.raises(Unauthorized):
        verify_caller(wikis, "alpha", f"Bearer {wikis.key.sign(claims, ACCESS_TOKEN_TYP)}")


def test_missing_credentials_unauthorized(wikis):
    with pytest.raises(Unauthorized):
        verify_caller(wikis, "alpha", None)


def test_missing_credentials_on_a_public_wiki_is_the_anonymous_reader(wikis):
    wikis.store.update_wiki("alpha", is_public=True)
    assert verify_caller(wikis, "alpha", None) is ANONYMOUS


def test_bad_credentials_on_a_public_wiki_stay_unauthorized(wikis):
    wikis.store.update_wiki("alpha", is_public=True)
    with pytest.raises(Unauthorized):
        verify_caller(wikis, "alpha", "Bearer rw_unknown")


def test_wiki_token_of_alpha_rejected_on_beta(wikis, users):
    _, secret = wikis.store.create_token("alpha", users[0], "editor")
    with pytest.raises(Unauthorized):
        verify_caller(wikis, "beta", f"Bearer {secret}")


def test_revoked_token_rejected(wikis, users):
    token, secret = wikis.store.create_token("alpha", users[0], "editor")
    wikis.store.revoke_token(token.id)
    with pytest.raises(Unauthorized):
        verify_caller(wikis, "alpha", f"Bearer {secret}")


def test_non_member_session_forbidden_on_private_wiki(wikis, users):
    jwt = wikis.key.mint_session(users[1], "bob.test", wikis.settings.auth_origin, 60)
    with pytest.raises(Forbidden, match="not a member"):
        verify_caller(wikis, "alpha", f"Bearer {jwt}")


@pytest.fixture
def client(wikis):
    async def inner(scope, receive, send):  # stands in for FastMCP: only admitted requests
        state = scope.get("state", {})
        caller = state.get("caller")
        body = {"path": scope["path"], "caller": caller.did if caller else None}
        await JSONResponse(body)(scope, receive, send)

    app = McpAuth(inner, wikis)
    transport = httpx2.ASGITransport(app=app)
    return httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8001")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]
)
async def test_protected_resource_metadata(client, wikis, path):
    response = await client.get(path, headers={"Host": ALPHA})
    assert response.status_code == 200
    assert response.json() == {
        "resource": wikis.settings.mcp_url("alpha"),
        "authorization_servers": [wikis.settings.auth_origin],
        "scopes_supported": ["wiki:read", "wiki:write"],
        "bearer_methods_supported": ["header"],
        "resource_name": "alpha.localhost wiki",
    }


@pytest.mark.asyncio
async def test_no_credentials_gets_401_with_metadata_url(client, wikis):
    response = await client.post("/mcp", headers={"Host": ALPHA}, json={})
    assert response.status_code == 401
    prm = wikis.settings.mcp_origin("alpha") + "/.well-known/oauth-protected-resource/mcp"
    assert response.headers["www-authenticate"] == (
        f'Bearer resource_metadata="{prm}", scope="wiki:read wiki:write"'
    )
    assert response.json()["ok"] is False


@pytest.mark.asyncio
async def test_invalid_token_gets_401_invalid_token(client):
    response = await client.post("/mcp", headers={"Host": ALPHA, "Authorization": "Bearer x.y.z"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    # An HTTP-level auth answer (the client acts on status and challenge): the platform's shape.
    body = response.json()
    assert body["ok"] is False and body["status"] == 401 and body["error"]


@pytest.mark.parametrize("host", ["gamma.localhost", "localhost", "127.0.0.1", "a.b.localhost"])
@pytest.mark.asyncio
async def test_unknown_host_is_404(client, host):
    response = await client.get("/.well-known/oauth-protected-resource", headers={"Host": host})
    assert response.status_code == 404
    assert response.json()["error"] == "no wiki at this address"


@pytest.mark.asyncio
async def test_valid_token_reaches_the_app_with_its_caller(client, wikis, users):
    _, secret = wikis.store.create_token("alpha", users[0], "viewer")
    headers = {"Host": ALPHA, "Authorization": f"Bearer {secret}"}
    response = await client.post("/mcp", headers=headers, json={})
    assert response.json() == {"path": "/mcp", "caller": users[0]}


@pytest.mark.asyncio
async def test_healthz_answers_on_any_host(client):
    response = await client.get("/healthz", headers={"Host": "whatever"})
    assert response.json()["path"] == "/healthz"


@pytest.mark.asyncio
async def test_authorize_on_the_mcp_origin_goes_to_the_auth_service_for_this_wiki(client, wikis):
    response = await client.get("/authorize?client_id=c&state=s", headers={"Host": ALPHA})
    assert response.status_code == 308
    resource = "http%3A%2F%2Falpha.localhost%3A8001%2Fmcp"
    query = f"client_id=c&state=s&resource={resource}"
    expected = f"{wikis.settings.auth_origin}/auth/authorize?{query}"
    assert response.headers["location"] == expected


@pytest.mark.asyncio
async def test_authorize_on_the_mcp_origin_keeps_the_resource_asked(client, wikis):
    response = await client.get("/authorize?resource=x", headers={"Host": ALPHA})
    assert response.headers["location"] == f"{wikis.settings.auth_origin}/auth/authorize?resource=x"


@pytest.mark.asyncio
async def test_oversized_request_body_is_413(client, wikis, users):
    _, secret = wikis.store.create_token("alpha", users[0], "editor")
    headers = {"Host": ALPHA, "Authorization": f"Bearer {secret}"}
    response = await client.post("/mcp", headers=headers, content=b"x" * (9 * 1024 * 1024))
    assert response.status_code == 413
    error = {"code": -32600, "message": "Invalid Request: request body over 8 MiB"}
    assert response.json() == {"jsonrpc": "2.0", "id": None, "error": error}


@pytest.mark.asyncio
@pytest.mark.parametrize("host", ["alpha.localhost:8001", "ALPHA.localhost", "alpha.localhost."])
async def test_host_names_the_wiki_whatever_its_port_or_case(client, wikis, host):
    response = await client.get("/.well-known/oauth-protected-resource", headers={"Host": host})
    assert response.json()["resource"] == wikis.settings.mcp_url("alpha")


def test_only_a_wiki_token_due_for_its_last_used_time_makes_admission_write(wikis, users):
    token, secret = wikis.store.create_token("alpha", users[0], "editor")
    assert admit_writes(wikis, ALPHA, f"Bearer {secret}")  # never used yet
    verify_caller(wikis, "alpha", f"Bearer {secret}")
    assert wikis.store.get_token(token.id).last_used_at is not None
    assert not admit_writes(wikis, ALPHA, f"Bearer {secret}")  # used within the minute
    for authorization in (None, "Basic abc", f"Bearer {access_token(wikis, users[0])}"):
        assert not admit_writes(wikis, ALPHA, authorization)
    assert not admit_writes(wikis, "beta.localhost", f"Bearer {secret}")  # not beta's token
    fresh, fresh_secret = wikis.store.create_token("alpha", users[0], "editor")
    wikis.store.revoke_token(fresh.id)
    assert not admit_writes(wikis, ALPHA, f"Bearer {fresh_secret}")  # revoked: never recorded


@pytest.mark.asyncio
async def test_a_request_records_when_its_token_was_last_used(client, wikis, users):
    token, secret = wikis.store.create_token("alpha", users[0], "viewer")
    headers = {"Host": ALPHA, "Authorization": f"Bearer {secret}"}
    for _ in range(2):  # first on a worker thread (it writes), then inline (it only reads)
        response = await client.post("/mcp", headers=headers, json={})
        assert response.json() == {"path": "/mcp", "caller": users[0]}
        assert wikis.store.get_token(token.id).last_used_at is not None
    wikis.store.revoke_token(token.id)
    response = await client.post("/mcp", headers=headers, json={})
    assert response.status_code == 401
