import socket
import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from app.auth import metadata as oauth_metadata
from app.auth_server import create_app
from app.core.platform import Platform
from app.core.platform import init_instance
from app.core.settings import Settings
from app.core.settings import gunicorn_workers
from app.web.bodies import SLOW_AFTER


@pytest.fixture
def client(platform):
    return create_app(platform.settings).test_client()


@pytest.fixture
def public_client(tmp_path):
    """The auth service of a deployed-style instance: https on robot.wtf, behind Caddy."""
    settings = Settings.from_env(
        {"ROBOT_DATA_DIR": str(tmp_path / "public"), "PLATFORM_DOMAIN": "robot.wtf"}
    )
    init_instance(settings)
    return create_app(settings).test_client()


def test_platform_jwks_publishes_the_public_signing_key(client, platform):
    response = client.get("/.well-known/jwks.json")
    [key] = response.json["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["kid"]) == (
        "EC",
        "P-256",
        "ES256",
        platform.key.kid,
    )
    assert "d" not in key


def test_platform_jwks_verifies_a_session(client, platform):
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    token = platform.key.mint_session("did:plc:alice", "alice.test", "http://x", 60)
    assert jwt.decode(token, keys, algorithms=["ES256"]).claims["sub"] == "did:plc:alice"


def test_client_metadata_for_the_public_domain(public_client):
    response = public_client.get("/auth/client-metadata.json")
    doc = response.json
    assert response.mimetype == "application/json"
    assert doc["client_id"] == "https://robot.wtf/auth/client-metadata.json"
    assert doc["redirect_uris"] == ["https://robot.wtf/auth/callback"]
    assert doc["jwks_uri"] == "https://robot.wtf/auth/client-jwks.json"


def test_client_metadata_has_the_atproto_fields(client, settings):
    doc = client.get("/auth/client-metadata.json").json
    assert doc["client_id"] == settings.auth_origin + "/auth/client-metadata.json"
    assert doc["application_type"] == "web"
    assert set(doc["grant_types"]) == {"authorization_code", "refresh_token"}
    assert "atproto" in doc["scope"].split() and doc["response_types"] == ["code"]
    assert doc["dpop_bound_access_tokens"] is True
    assert doc["token_endpoint_auth_method"] == "private_key_jwt"
    assert doc["token_endpoint_auth_signing_alg"] == "ES256"
    assert ("jwks" in doc) != ("jwks_uri" in doc)


def test_client_jwks_is_a_separate_public_key(client, platform):
    [key] = client.get("/auth/client-jwks.json").json["keys"]
    assert key["kid"] != platform.key.kid and key["alg"] == "ES256" and "d" not in key
    assert platform.settings.client_key_path.stat().st_mode & 0o777 == 0o600


def test_authorization_server_metadata(client, settings):
    doc = client.get("/.well-known/oauth-authorization-server").json
    assert doc["issuer"] == settings.auth_origin
    assert doc["authorization_endpoint"] == settings.auth_origin + "/auth/authorize"
    assert doc["token_endpoint"] == settings.auth_origin + "/auth/token"
    assert doc["registration_endpoint"] == settings.auth_origin + "/auth/register"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert doc["token_endpoint_auth_methods_supported"] == ["none"]
    assert doc["jwks_uri"] == settings.auth_origin + "/.well-known/jwks.json"


def test_authorization_server_issuer_is_the_public_origin(public_client):
    doc = public_client.get("/.well-known/oauth-authorization-server").json
    assert doc["issuer"] == "https://robot.wtf"


def test_scopes_match_what_the_mcp_service_advertises(platform):
    from app.mcp.auth import protected_resource_metadata

    served = oauth_metadata.authorization_server_metadata(platform.settings)
    advertised = protected_resource_metadata(platform, "alpha")
    assert (
        served["scopes_supported"] == advertised["scopes_supported"] == ["wiki:read", "wiki:write"]
    )


@pytest.mark.parametrize(
    "path", ["/.well-known/jwks.json", "/auth/client-metadata.json", "/auth/client-jwks.json"]
)
def test_public_documents_may_be_fetched_cross_origin(client, path):
    assert client.get(path).headers["Access-Control-Allow-Origin"] == "*"


def test_healthz(client):
    assert client.get("/healthz").json == {
        "ok": True,
        "checks": {"database": "ok", "client_key": "ok"},
    }


def test_missing_client_key_stops_startup_with_one_line(platform, capsys):
    platform.settings.client_key_path.unlink()
    with pytest.raises(SystemExit):
        create_app(platform.settings)
    assert capsys.readouterr().err.startswith("auth: signing key")


def test_init_keeps_the_client_key(settings):
    init_instance(settings)
    before = settings.client_key_path.read_bytes()
    assert not any("client key" in line for line in init_instance(settings))
    assert settings.client_key_path.read_bytes() == before
    Platform.load(settings).store.close()


@pytest.mark.stack
def test_stack_auth_documents(stack):
    auth = stack.client("auth")
    settings = stack.settings
    metadata = auth.get("/auth/client-metadata.json").json()
    assert metadata["client_id"] == settings.auth_origin + "/auth/client-metadata.json"
    assert auth.get("/.well-known/oauth-authorization-server").json()["issuer"] == (
        settings.auth_origin
    )
    assert auth.get("/.well-known/jwks.json").json()["keys"][0]["alg"] == "ES256"
    assert "Sign in with Bluesky" in auth.get("/auth/login").text


def _slow_form(port: int, path: str) -> socket.socket:
    """A client that sends a form's headers and its first bytes, then waits."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 60000\r\n\r\nhandle=".encode()
    )
    return sock


@pytest.mark.stack
@pytest.mark.parametrize(("service", "path"), [("auth", "/auth/login"), ("api", "/api/wikis")])
def test_stack_slow_bodies_never_hold_every_worker_of_auth_or_api(stack, service, path):
    """Fifth review: four anonymous slow sign-in forms held every auth worker, and sign-in
    waited until they ended. Slow bodies now take the service's places (all its workers but
    one): the next is refused at once, and the service still answers."""
    port = stack.port(service)
    holding = [_slow_form(port, path) for _ in range(gunicorn_workers() - 1)]
    try:
        time.sleep(SLOW_AFTER + 0.5)  # each has taken a place by now
        with _slow_form(port, path) as refused:
            answer = b"".join(iter(lambda: refused.recv(65536), b"")).decode("latin-1")
        assert answer.startswith("HTTP/1.1 503") and "Retry-After: 5" in answer, answer
        for _ in range(3):
            assert stack.client(service).get("/healthz").status_code == 200
    finally:
        for sock in holding:
            sock.close()
