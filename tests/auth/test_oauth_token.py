"""The OAuth server's /register and /token (RFC 7591, 6749, 7636, 8707, 9700) in process."""

import base64
import hashlib
import secrets
import time

import pytest

from app.auth_server import create_app
from app.core.errors import Unauthorized
from app.core.identity import authenticate
from app.core.schema import oauth_clients
from app.core.schema import oauth_grants
from app.core.schema import oauth_refresh_tokens
from app.core.signing import ACCESS_TOKEN_TYP

# The store's OAuth rows (codes spent once, refresh families): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_engines

REDIRECT = "https://claude.ai/api/mcp/auth_callback"
VERIFIER = "v" * 64


def challenge(verifier: str = VERIFIER) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.fixture
def client(wikis):
    return create_app(wikis.settings).test_client()


@pytest.fixture
def registered(client):
    body = {"client_name": "Claude", "redirect_uris": [REDIRECT]}
    response = client.post("/register", json=body)
    assert response.status_code == 201, response.json
    return response.json["client_id"]


def grant_code(
    platform, client_id: str, did: str, ttl: int = 300, scope: str = "wiki:read wiki:write"
) -> str:
    """An authorization code `did` granted `client_id` for wiki alpha (as consent stores it)."""
    secret = secrets.token_urlsafe(32)
    data = {
        "redirect_uri": REDIRECT,
        "scope": scope,
        "resource": platform.settings.mcp_url("alpha"),
        "code_challenge": challenge(),
        "code_challenge_method": "S256",
    }
    platform.store.save_authorization_code(secret, client_id, did, "alpha", data, ttl)
    return secret


@pytest.fixture
def code(wikis, users, registered):
    return grant_code(wikis, registered, users[0])


def redeem(client, registered, code, **extra):
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": registered,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        **extra,
    }
    return client.post("/token", data={k: v for k, v in form.items() if v is not None})


def refresh(client, registered, token, **extra):
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": registered}
    return client.post("/token", data={**form, **extra})


def test_registration_answers_a_public_client(client):
    body = {"client_name": "Claude", "redirect_uris": [REDIRECT, "http://127.0.0.1:7777/cb"]}
    response = client.post("/register", json=body)
    assert response.status_code == 201
    assert response.json["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in response.json and response.json["client_id"]


@pytest.mark.parametrize(
    "body",
    [
        {"client_name": "x"},
        {"redirect_uris": []},
        {"redirect_uris": "https://a.example/cb"},
        {"redirect_uris": ["http://evil.example/cb"]},
        {"redirect_uris": ["https://a.example/cb#frag"]},
        {"redirect_uris": ["javascript:alert(1)"]},
        {"redirect_uris": [f"https://a.example/{i}" for i in range(11)]},
        {"redirect_uris": ["https://a.example/" + "x" * 3000]},
        {"redirect_uris": [REDIRECT], "client_name": "x" * 500},
        {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"},
        {"redirect_uris": [REDIRECT], "grant_types": ["password"]},
        {"redirect_uris": [REDIRECT], "scope": "admin"},
        {"redirect_uris": [REDIRECT], "scope": 5},
        {"redirect_uris": [REDIRECT], "response_types": 5},
        {"redirect_uris": [REDIRECT], "client_uri": 5},
        {"redirect_uris": [REDIRECT], "tos_uri": {"a": 1}},
        {"redirect_uris": [REDIRECT], "contacts": [1]},
        {"redirect_uris": [REDIRECT], "logo_uri": "not a url"},
        {"redirect_uris": ["https://[::1"]},
        [1, 2],
    ],
)
def test_malformed_registration_is_refused_and_stores_nothing(client, wikis, body):
    response = client.post("/register", json=body)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_client_metadata"
    assert wikis.store._all(oauth_clients.select()) == []


def test_registration_drops_keys_and_unknown_fields(client):
    body = {"redirect_uris": [REDIRECT], "jwks_uri": "https://x.example/k", "extra": "x"}
    response = client.post("/register", json=body)
    assert response.status_code == 201
    assert "jwks_uri" not in response.json and "extra" not in response.json


def test_a_client_that_did_not_register_for_refresh_gets_no_refresh_token(client, wikis, users):
    body = {"redirect_uris": [REDIRECT], "grant_types": ["authorization_code"]}
    registered = client.post("/register", json=body).json["client_id"]
    token = redeem(client, registered, grant_code(wikis, registered, users[0])).json
    assert token["access_token"] and "refresh_token" not in token


def test_registration_that_is_not_json(client):
    response = client.post("/register", data="{nope", content_type="application/json")
    assert (response.status_code, response.json["error"]) == (400, "invalid_client_metadata")


def test_code_gives_an_access_token_for_the_wiki(client, wikis, users, registered, code):
    response = redeem(client, registered, code)
    assert response.status_code == 200, response.json
    token = response.json
    assert token["token_type"] == "Bearer" and token["scope"] == "wiki:read wiki:write"
    claims = wikis.key.verify(
        token["access_token"], ACCESS_TOKEN_TYP, wikis.settings.mcp_url("alpha")
    )
    assert (claims["sub"], claims["client_id"]) == (users[0], registered)
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "extra, error",
    [
        ({"code_verifier": None}, "invalid_request"),
        ({"code_verifier": "w" * 64}, "invalid_grant"),
        ({"code_verifier": "short"}, "invalid_request"),
        ({"redirect_uri": "https://claude.ai/other"}, "invalid_grant"),
        ({"resource": "http://beta.localhost:8001/mcp"}, "invalid_target"),
        ({"resource": "https://evil.example/mcp"}, "invalid_target"),
        ({"client_id": "mcp_nobody"}, "invalid_client"),
    ],
)
def test_bad_token_request_is_refused(client, registered, code, extra, error):
    response = redeem(client, registered, code, **extra)
    assert response.status_code in (400, 401)
    assert response.json["error"] == error


def test_resource_in_trailing_slash_form_is_the_same(client, wikis, registered, code):
    resource = wikis.settings.mcp_url("alpha") + "/"
    assert redeem(client, registered, code, resource=resource).status_code == 200


def test_code_works_once_and_a_replay_revokes_its_tokens(client, registered, code):
    first = redeem(client, registered, code).json
    replay = redeem(client, registered, code)
    assert (replay.status_code, replay.json["error"]) == (400, "invalid_grant")
    assert refresh(client, registered, first["refresh_token"]).json["error"] == "invalid_grant"


def test_expired_code_is_refused(client, wikis, users, registered):
    old = grant_code(wikis, registered, users[0], ttl=-1)
    assert redeem(client, registered, old).json["error"] == "invalid_grant"


def test_a_new_code_sweeps_out_expired_ones(client, wikis, users, registered):
    grant_code(wikis, registered, users[0], ttl=-1)
    grant_code(wikis, registered, users[0])
    assert len(wikis.store._all(oauth_grants.select())) == 1


def test_refresh_rotates_the_token(client, wikis, registered, code):
    first = redeem(client, registered, code).json
    second = refresh(client, registered, first["refresh_token"])
    assert second.status_code == 200
    assert second.json["refresh_token"] != first["refresh_token"]
    assert wikis.key.verify(
        second.json["access_token"], ACCESS_TOKEN_TYP, wikis.settings.mcp_url("alpha")
    )


def test_reusing_a_rotated_refresh_token_revokes_the_family(client, wikis, registered, code):
    first = redeem(client, registered, code).json
    second = refresh(client, registered, first["refresh_token"]).json
    reuse = refresh(client, registered, first["refresh_token"])
    assert reuse.json["error"] == "invalid_grant"
    assert refresh(client, registered, second["refresh_token"]).json["error"] == "invalid_grant"
    rows = wikis.store._all(oauth_refresh_tokens.select())
    assert len(rows) == 2 and all(row["revoked_at"] for row in rows)


def test_refresh_after_removal_is_refused(client, wikis, users, registered):
    wikis.store.set_member("alpha", users[1], "editor")
    first = redeem(client, registered, grant_code(wikis, registered, users[1])).json
    wikis.store.remove_member("alpha", users[1])
    assert refresh(client, registered, first["refresh_token"]).json["error"] == "invalid_grant"


def test_refresh_after_demotion_narrows_the_scope(client, wikis, users, registered):
    wikis.store.set_member("alpha", users[1], "editor")
    first = redeem(client, registered, grant_code(wikis, registered, users[1])).json
    wikis.store.set_member("alpha", users[1], "viewer")
    assert refresh(client, registered, first["refresh_token"]).json["scope"] == "wiki:read"


REFUSED_REFRESHES = [
    ({"scope": "wiki:read wiki:write"}, "invalid_scope"),
    ({"scope": "wiki:write"}, "invalid_scope"),
    ({"scope": "admin"}, "invalid_scope"),
    ({"resource": "https://beta.mcp"}, "invalid_target"),  # rewritten to beta's MCP URL below
    ({"resource": "https://elsewhere.example/mcp"}, "invalid_target"),
    ({"resource": ["https://alpha.mcp", "https://alpha.mcp"]}, "invalid_target"),
    ({"client_id": "someone-else"}, "invalid_client"),
]


@pytest.mark.parametrize("extra, error", REFUSED_REFRESHES)
def test_a_refused_refresh_leaves_the_token_usable(client, wikis, users, registered, extra, error):
    """A refusal changes nothing: the token is spent only when its successor is issued."""
    token = redeem(client, registered, grant_code(wikis, registered, users[0], scope="wiki:read"))
    token = token.json["refresh_token"]
    mcp = {"https://beta.mcp": wikis.settings.mcp_url("beta")}
    mcp["https://alpha.mcp"] = wikis.settings.mcp_url("alpha")
    extra = {
        k: [mcp.get(x, x) for x in v] if isinstance(v, list) else mcp.get(v, v)
        for k, v in extra.items()
    }
    refused = refresh(client, registered, token, **extra)
    assert refused.status_code in (400, 401) and refused.json["error"] == error
    again = refresh(client, registered, token)
    assert again.status_code == 200, again.json
    assert again.json["scope"] == "wiki:read"


def test_a_removed_member_re_added_must_consent_again(client, wikis, users, registered):
    """Removal ends the member's OAuth grants for good: re-adding them brings no old agent back
    (found by review: the refresh token worked again after re-adding)."""
    wikis.store.set_member("alpha", users[1], "editor")
    token = redeem(client, registered, grant_code(wikis, registered, users[1])).json
    wikis.store.remove_member("alpha", users[1])
    assert refresh(client, registered, token["refresh_token"]).json["error"] == "invalid_grant"
    wikis.store.set_member("alpha", users[1], "editor")
    assert refresh(client, registered, token["refresh_token"]).json["error"] == "invalid_grant"


def test_a_token_spent_by_a_concurrent_refresh_is_not_rotated_twice(
    client, wikis, registered, code
):
    """Two refreshes that both found the token live: only the first stores a successor; the
    second finds it spent, revokes the family and is refused."""
    from app.core.store import RefreshToken

    first = redeem(client, registered, code).json["refresh_token"]
    live = wikis.store.live_refresh_token(first)
    assert wikis.store.save_refresh_token("next-1", live, 60)
    assert not wikis.store.save_refresh_token("next-2", live, 60)
    assert wikis.store.live_refresh_token("next-1") is None  # the family is revoked
    assert wikis.store.live_refresh_token("next-2") is None
    assert isinstance(live, RefreshToken)


@pytest.mark.parametrize(
    "form, error",
    [
        ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, "invalid_grant"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
    ],
)
def test_token_endpoint_errors_are_json(client, registered, form, error):
    response = client.post("/token", data={**form, "client_id": registered})
    assert response.status_code == 400 and response.json["error"] == error


@pytest.mark.parametrize("path", ["/register", "/token", "/auth/token", "/revoke"])
def test_browser_clients_may_call_register_and_token(client, path):
    preflight = client.options(path, headers={"Origin": "https://inspector.example"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]


# -- RFC 7009 revocation: a revoked grant stops its refresh and its access tokens -------------


def wiki_caller(platform, access_token):
    """Who the MCP endpoint of wiki alpha takes the bearer of `access_token` for."""
    settings = platform.settings
    return authenticate(
        settings, platform.key, platform.store, "alpha", f"Bearer {access_token}", None
    )


def revoke(client, registered, token, path="/revoke", **extra):
    return client.post(path, data={"token": token, "client_id": registered, **extra})


@pytest.mark.parametrize("path", ["/revoke", "/auth/revoke"])
@pytest.mark.parametrize("which", ["refresh_token", "access_token"])
def test_revoking_a_token_ends_its_grant(client, wikis, registered, code, path, which):
    first = redeem(client, registered, code).json
    assert wiki_caller(wikis, first["access_token"]).role == "admin"
    response = revoke(client, registered, first[which], path, token_type_hint=which)
    assert (response.status_code, response.data) == (200, b"")
    assert response.headers["Cache-Control"] == "no-store"
    assert refresh(client, registered, first["refresh_token"]).json["error"] == "invalid_grant"
    with pytest.raises(Unauthorized):
        wiki_caller(wikis, first["access_token"])
    assert wikis.store._all(oauth_grants.select()) == []


def test_a_refreshed_access_token_stops_with_its_grant(client, wikis, registered, code):
    first = redeem(client, registered, code).json
    second = refresh(client, registered, first["refresh_token"]).json
    assert wiki_caller(wikis, second["access_token"]).role == "admin"
    assert revoke(client, registered, second["refresh_token"]).status_code == 200
    for token in (first["access_token"], second["access_token"]):
        with pytest.raises(Unauthorized):
            wiki_caller(wikis, token)


def test_another_clients_revocation_has_no_effect(client, wikis, registered, code):
    first = redeem(client, registered, code).json
    other = client.post("/register", json={"redirect_uris": [REDIRECT]}).json["client_id"]
    for token in (first["refresh_token"], first["access_token"]):
        assert revoke(client, other, token).status_code == 200
    assert wiki_caller(wikis, first["access_token"]).role == "admin"
    assert refresh(client, registered, first["refresh_token"]).status_code == 200


@pytest.mark.parametrize("grant", ["replay", "reuse"])
def test_a_grant_revoked_for_a_leak_stops_its_access_tokens(client, wikis, registered, code, grant):
    first = redeem(client, registered, code).json
    if grant == "replay":
        redeem(client, registered, code)
    else:
        refresh(client, registered, first["refresh_token"])
        refresh(client, registered, first["refresh_token"])
    with pytest.raises(Unauthorized):
        wiki_caller(wikis, first["access_token"])


def test_an_access_token_without_a_grant_is_refused(wikis, users):
    settings = wikis.settings
    claims = {"iss": settings.auth_origin, "sub": users[0], "aud": settings.mcp_url("alpha")}
    claims.update(scope="wiki:read", exp=int(time.time()) + 60)
    with pytest.raises(Unauthorized):
        wiki_caller(wikis, wikis.key.sign(claims, ACCESS_TOKEN_TYP))


def test_a_redeemed_grant_outlives_its_code_and_the_sweep(client, wikis, users, registered):
    first = redeem(client, registered, grant_code(wikis, registered, users[0], ttl=1)).json
    [row] = wikis.store._all(oauth_grants.select())
    assert row["expires_at"] > int(time.time()) + 3600
    grant_code(wikis, registered, users[0], ttl=-1)  # sweeps the expired code only
    assert len(wikis.store._all(oauth_grants.select())) == 2
    assert refresh(client, registered, first["refresh_token"]).status_code == 200


@pytest.mark.parametrize(
    "token",
    ["nope", "a.b.c", "x" * 9000, "\x00", '"\\', "é", "e30.e30.e30", "W10.W10.W10", "..", "."],
)
def test_unknown_or_hostile_tokens_answer_200(client, wikis, registered, code, token):
    first = redeem(client, registered, code).json
    assert revoke(client, registered, token).status_code == 200
    assert wiki_caller(wikis, first["access_token"]).role == "admin"


@pytest.mark.parametrize(
    "form, status, error",
    [
        ({}, 400, "invalid_request"),
        ({"token": ""}, 400, "invalid_request"),
        ({"token": ["a", "b"]}, 400, "invalid_request"),
        ({"client_id": None}, 401, "invalid_client"),
        ({"client_id": "unknown"}, 401, "invalid_client"),
        ({"client_id": "\x00"}, 401, "invalid_client"),
        ({"client_id": "x" * 3000}, 401, "invalid_client"),
    ],
)
def test_bad_revocation_requests(client, registered, form, status, error):
    data = {"client_id": registered, **form}
    response = client.post("/revoke", data={k: v for k, v in data.items() if v is not None})
    assert (response.status_code, response.json["error"]) == (status, error)


def test_metadata_advertises_the_revocation_endpoint(client, wikis):
    metadata = client.get("/.well-known/oauth-authorization-server").json
    assert metadata["revocation_endpoint"] == wikis.settings.auth_origin + "/auth/revoke"


@pytest.mark.parametrize("scheme", ["Basic", "Bearer"])
def test_a_client_that_tried_the_authorization_header_is_told_which_scheme_failed(
    client, registered, scheme
):
    """RFC 6749 §5.2: a 401 to a client that authenticated by header names that scheme."""
    credentials = base64.b64encode(f"{registered}:".encode()).decode()
    response = client.post(
        "/revoke", data={"token": "t"}, headers={"Authorization": f"{scheme} {credentials}"}
    )
    assert (response.status_code, response.json["error"]) == (401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith(f"{scheme} ")
