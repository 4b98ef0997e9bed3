"""Every error from api and auth has one JSON shape: {"ok": false, "error": str, "status": N}.

`status` equals the HTTP status, `error` is a non-empty message, the body is JSON whatever went
wrong (our own errors, unknown routes, wrong methods, oversized bodies, crashes), and no
traceback ever reaches the client.
"""

import pytest

from app import api_server
from app import auth_server
from app.web.session_cookie import PLAIN_NAME as SESSION_COOKIE

ALICE = ("did:plc:alice", "alice.test")


def assert_canonical_error(response, status):
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "application/json"
    body = response.json
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["error"], str) and body["error"].strip()
    assert "Traceback" not in text and 'File "' not in text


@pytest.fixture
def apps(platform, store):
    store.upsert_user(*ALICE)
    api, auth = api_server.create_app(platform.settings), auth_server.create_app(platform.settings)
    for app in (api, auth):

        def boom():
            raise RuntimeError("secret internals /etc/passwd")

        app.add_url_rule("/boom", "boom", boom)
    return {"api": api.test_client(), "auth": auth.test_client()}


@pytest.fixture
def bearer(platform):
    token = platform.key.mint_session(*ALICE, platform.settings.auth_origin, 3600)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "service, method, path, status",
    [
        ("api", "get", "/nope", 404),
        ("api", "get", "/static/nope.css", 404),
        ("api", "post", "/healthz", 405),
        ("api", "put", "/api/wikis", 405),
        ("api", "get", "/api/internal/check-slug", 404),
        ("api", "get", "/api/internal/check-slug?domain=www.localhost", 404),
        ("api", "get", "/api/wikis", 401),
        ("api", "get", "/boom", 500),
        ("auth", "get", "/nope", 404),
        ("auth", "get", "/auth/nope", 404),
        ("auth", "put", "/auth/login", 405),
        ("auth", "delete", "/.well-known/jwks.json", 405),
        ("auth", "get", "/boom", 500),
    ],
)
def test_unauthenticated_errors(apps, service, method, path, status):
    assert_canonical_error(getattr(apps[service], method)(path), status)


@pytest.mark.parametrize(
    "method, path, kwargs, status",
    [
        ("post", "/api/wikis", {"data": "slug=x"}, 400),
        ("post", "/api/wikis", {"json": {"slug": "WWW"}}, 400),
        ("post", "/api/wikis", {"json": {"slug": "alpha"}}, 409),
        ("post", "/api/wikis", {"data": "x" * 70_000, "content_type": "application/json"}, 413),
        ("get", "/api/wikis/nosuch", {}, 404),
        ("patch", "/api/wikis/alpha", {"json": {}}, 400),
        ("delete", "/api/wikis/alpha/tokens/tok_0", {}, 404),
        ("delete", "/api/wikis/alpha/members/did:plc:alice", {}, 409),
        ("get", "/api/wikis/alpha/nope", {}, 404),
    ],
)
def test_management_errors(apps, bearer, method, path, kwargs, status):
    apps["api"].post("/api/wikis", json={"slug": "alpha"}, headers=bearer)
    response = getattr(apps["api"], method)(path, headers=bearer, **kwargs)
    assert_canonical_error(response, status)


def test_forbidden_is_canonical(apps, platform, store):
    apps["api"].set_cookie(SESSION_COOKIE, store.create_session(ALICE[0], "localhost", 3600)[1])
    assert_canonical_error(apps["api"].post("/api/wikis", json={"slug": "beta"}), 403)


def test_unauthorized_carries_a_challenge(apps):
    response = apps["api"].get("/api/wikis", headers={"Authorization": "Bearer x.y.z"})
    assert_canonical_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_method_not_allowed_lists_the_allowed(apps):
    response = apps["auth"].post("/healthz")
    assert_canonical_error(response, 405)
    assert "GET" in response.headers["Allow"]


def test_crash_is_logged_not_shown(apps, caplog):
    response = apps["api"].get("/boom")
    assert "secret internals" not in response.get_data(as_text=True)
    assert "secret internals" in caplog.text


def test_unhealthy_is_canonical(apps, platform):
    platform.settings.client_key_path.unlink()
    assert_canonical_error(apps["auth"].get("/healthz"), 503)
