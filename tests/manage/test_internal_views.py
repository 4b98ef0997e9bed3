import time
import uuid

import httpx2
import pytest
from joserfc.jwk import ECKey

from app.api_server import create_app
from app.core import wikis
from app.core.schema import sessions
from app.core.settings import Settings
from app.core.signing import SigningKey
from app.core.slugs import RESERVED_SLUGS
from app.web.session_cookie import PLAIN_NAME as SESSION_COOKIE
from tests.core.slug_names import HOST_SPELLINGS_REFUSED
from tests.core.slug_names import WHOLE_NAME_SPELLINGS_FREE

ALICE = ("did:plc:alice", "alice.test")


@pytest.fixture
def app(platform):
    return create_app(platform.settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def alpha(settings, store):
    store.upsert_user(*ALICE)
    wikis.create_wiki(settings, store, "alpha", ALICE[0])
    return "alpha"


@pytest.fixture
def session(platform):
    return platform.key.mint_session(*ALICE, platform.settings.auth_origin, 3600)


@pytest.fixture
def cookie(store, alpha):
    """The apex cookie credential of a server-side session of Alice's."""
    return store.create_session(ALICE[0], "localhost", 3600)[1]


def test_check_slug_allows_an_existing_wiki(client, alpha):
    response = client.get("/api/internal/check-slug?domain=alpha.localhost")
    assert response.status_code == 200 and response.json["slug"] == "alpha"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?domain=",
        "?domain=localhost",
        "?domain=beta.localhost",
        "?domain=www.localhost",
        "?domain=api.localhost",
        "?domain=alpha.localhost:8000",
        "?domain=alpha.localhost.",
        "?domain=x.alpha.localhost",
        "?domain=alpha.example.com",
        "?domain=alpha",
        "?domain=127.0.0.1",
        "?domain=%2e%2e.localhost",
        "?domain=alpha.localhost/",
        "?domain=%C3%A5lpha.localhost",
        "?domain=alpha.localhost%00",
        "?domain=alpha.localhost%0A",
        "?domain=alpha%0A.localhost",
        "?domain=alpha.localhost%0D%0A",
        "?domain=%20alpha.localhost",
        "?domain=" + "a" * 400 + ".localhost",
        "?slug=alpha",
    ],
)
def test_check_slug_refuses_anything_else(client, alpha, query):
    response = client.get("/api/internal/check-slug" + query)
    assert response.status_code == 404 and response.json["ok"] is False


@pytest.mark.parametrize(
    "path",
    [
        "/api/internal/check-slug/?domain=alpha.localhost",
        "/api/internal/check-slug?domain=ALPHA.localhost",
    ],
)
def test_check_slug_variants_answer_without_redirect(client, alpha, path):
    assert client.get(path).status_code == 200


def test_check_slug_needs_no_credentials(client, alpha):
    headers = {"Authorization": "Bearer garbage", "Cookie": f"{SESSION_COOKIE}=garbage"}
    response = client.get("/api/internal/check-slug?domain=alpha.localhost", headers=headers)
    assert response.status_code == 200


def test_check_slug_forgets_a_deleted_wiki(client, settings, store, alpha):
    wikis.delete_wiki(settings, store, "alpha")
    assert client.get("/api/internal/check-slug?domain=alpha.localhost").status_code == 404


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["ok"] is True


def test_healthz_reports_a_missing_static_dir(tmp_path, platform):
    settings = Settings.from_env(
        {"ROBOT_DATA_DIR": str(platform.settings.data_dir), "ROBOT_STATIC_DIR": str(tmp_path / "x")}
    )
    response = create_app(settings).test_client().get("/healthz")
    assert response.status_code == 503 and "static" in response.json["error"]


def test_static_files_come_from_the_static_dir(tmp_path, platform):
    static = tmp_path / "static"
    static.mkdir()
    (static / "site.css").write_text("body {}")
    settings = Settings.from_env(
        {"ROBOT_DATA_DIR": str(platform.settings.data_dir), "ROBOT_STATIC_DIR": str(static)}
    )
    client = create_app(settings).test_client()
    with client.get("/static/site.css") as response:
        assert response.get_data(as_text=True) == "body {}"
    assert client.get("/static/../../data/robot.db").status_code == 404
    assert client.get("/static/missing.css").status_code == 404


def test_repo_stylesheet_is_served(client):
    with client.get("/static/robot.css") as response:
        assert response.status_code == 200 and response.mimetype == "text/css"


def test_management_ui_asks_a_stranger_to_sign_in(client):
    response = client.get("/app/")
    assert response.status_code == 303 and "/auth/login?return_to=" in response.location


def test_uninitialised_instance_stops_with_one_line(tmp_path, capsys):
    settings = Settings.from_env({"ROBOT_DATA_DIR": str(tmp_path / "empty")})
    with pytest.raises(SystemExit) as stopped:
        create_app(settings)
    assert stopped.value.code == 3
    assert capsys.readouterr().err.startswith("api: signing key")


# -- who may call the management API ----------------------------------------------------------


def test_no_credentials_is_401_with_login_url(client, settings):
    response = client.get("/api/wikis")
    assert response.status_code == 401
    assert response.json["login_url"] == settings.login_url()


def _forged_session(settings):
    other = SigningKey(ECKey.generate_key("P-256", private=True))
    return other.mint_session(*ALICE, settings.auth_origin, 3600)


@pytest.mark.parametrize(
    "make_header",
    [
        lambda p: "Bearer not-a-jwt",
        lambda p: "Bearer a.b.c",
        lambda p: "Bearer " + "x" * 9000,
        lambda p: "Basic YWxpY2U6cHc=",
        lambda p: "Bearer",
        lambda p: "Bearer " + p.key.mint_session(*ALICE, p.settings.auth_origin, -120),
        lambda p: "Bearer " + p.key.mint_session(*ALICE, "https://evil.example", 3600),
        lambda p: "Bearer " + _forged_session(p.settings),
        lambda p: (
            "Bearer "
            + p.key.mint_access_token(
                ALICE[0],
                p.settings.mcp_url("alpha"),
                p.settings.auth_origin,
                "wiki:read wiki:write",
                600,
                "c",
                "no-such-grant",
            )
        ),
    ],
    ids=["garbage", "dots", "huge", "basic", "empty", "expired", "issuer", "forged", "oauth"],
)
def test_bad_bearer_is_401(client, platform, alpha, make_header):
    response = client.get("/api/wikis", headers={"Authorization": make_header(platform)})
    assert response.status_code == 401 and response.json["error"]


def test_wiki_token_is_not_a_session(client, store, alpha):
    _, secret = store.create_token("alpha", ALICE[0], "admin")
    response = client.get("/api/wikis", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401 and "wiki token" in response.json["error"]


def test_session_cookie_reads(client, cookie, alpha):
    client.set_cookie(SESSION_COOKIE, cookie)
    assert client.get("/api/wikis").json["wikis"][0]["slug"] == "alpha"


@pytest.mark.parametrize(
    "make_cookie",
    [
        lambda p, s: "garbage",
        lambda p, s: "x" * 4000,
        # A session JWT is for Bearer use by operators and tests, never a browser's cookie.
        lambda p, s: p.key.mint_session(*ALICE, p.settings.auth_origin, 3600),
        # A credential handed to a wiki host is worthless at the apex.
        lambda p, s: s.create_session(ALICE[0], "alpha.localhost", 3600)[1],
        lambda p, s: _expired_cookie(s),
    ],
    ids=["garbage", "huge", "jwt", "wiki-host", "expired"],
)
def test_bad_cookie_is_401(client, platform, store, alpha, make_cookie):
    client.set_cookie(SESSION_COOKIE, make_cookie(platform, store))
    assert client.get("/api/wikis").status_code == 401


def _expired_cookie(store) -> str:
    session, secret = store.create_session(ALICE[0], "localhost", 3600)
    with store.engine.begin() as connection:
        connection.execute(
            sessions.update().where(sessions.c.id == session.id).values(expires_at=1)
        )
    return secret


def test_ended_session_cookie_is_401(client, store, cookie):
    client.set_cookie(SESSION_COOKIE, cookie)
    assert client.get("/api/wikis").status_code == 200
    (session,) = store.list_sessions(ALICE[0])
    assert store.end_session(session.id)
    assert client.get("/api/wikis").status_code == 401


@pytest.mark.parametrize(
    "origin", [None, "null", "http://alpha.localhost:8000", "http://evil.test"]
)
def test_cookie_changes_need_the_platform_origin(client, cookie, store, alpha, origin):
    client.set_cookie(SESSION_COOKIE, cookie)
    headers = {"Origin": origin} if origin else {}
    created = client.post("/api/wikis", json={"slug": "beta"}, headers=headers)
    deleted = client.delete("/api/wikis/alpha", headers=headers)
    assert created.status_code == deleted.status_code == 403
    assert store.find_wiki("beta") is None and store.find_wiki("alpha") is not None


def test_cookie_change_from_the_platform_origin_works(client, settings, cookie, alpha):
    client.set_cookie(SESSION_COOKIE, cookie)
    headers = {"Origin": settings.api_origin}
    assert client.post("/api/wikis", json={"slug": "beta"}, headers=headers).status_code == 201
    assert client.delete("/api/wikis/beta", headers=headers).status_code == 200


def test_bearer_changes_need_no_origin(client, session, alpha):
    headers = {"Authorization": f"Bearer {session}", "Origin": "http://evil.test"}
    assert client.post("/api/wikis", json={"slug": "beta"}, headers=headers).status_code == 201


# -- the real api service ------------------------------------------------------------------------


def _stack_user(stack) -> tuple[str, str]:
    did = f"did:plc:api{uuid.uuid4().hex[:10]}"
    added = stack.robot("user", "add", "--did", did, "--handle", f"{did[8:]}.test")
    assert added.returncode == 0, added.stderr
    session = stack.robot("session", did)
    assert session.returncode == 0, session.stderr
    return did, session.stdout.strip().splitlines()[-1]


@pytest.mark.stack
@pytest.mark.parametrize(
    "path",
    [
        "/api/internal/check-slug/?domain=nosuch.localhost",
        "//api/internal/check-slug?domain=nosuch.localhost",
        "/api/internal/check-slug?domain=localhost",
        "/api/internal/check-slug",
    ],
)
def test_stack_check_slug_refuses_without_redirect(stack, path):
    api = stack.client("api")
    response = api.get(str(api.base_url).rstrip("/") + path)  # absolute: keeps a leading //
    assert response.status_code == 404 and response.json()["ok"] is False


@pytest.mark.stack
def test_stack_create_wiki_via_api_is_served_on_its_host(stack):
    _, session = _stack_user(stack)
    slug = f"via-api-{uuid.uuid4().hex[:8]}"  # `api-` and digits alone is a reserved host
    api = stack.client("api")
    headers = {"Authorization": f"Bearer {session}"}
    created = api.post("/api/wikis", json={"slug": slug, "display_name": "Stack"}, headers=headers)
    assert created.status_code == 201, created.text
    assert api.get(f"/api/internal/check-slug?domain={slug}.localhost").status_code == 200
    page = stack.client("otterwiki", host=f"{slug}.localhost").get("/", headers=headers)
    assert page.status_code == 200 and "Welcome to your wiki" in page.text


@pytest.mark.stack
def test_stack_deleted_wiki_disappears(stack):
    _, session = _stack_user(stack)
    slug = f"gone-{uuid.uuid4().hex[:8]}"
    api = stack.client("api")
    headers = {"Authorization": f"Bearer {session}"}
    assert api.post("/api/wikis", json={"slug": slug}, headers=headers).status_code == 201
    assert api.delete(f"/api/wikis/{slug}", headers=headers).status_code == 200
    assert api.get(f"/api/internal/check-slug?domain={slug}.localhost").status_code == 404
    assert not stack.settings.wiki_dir(slug).exists()


@pytest.mark.stack
def test_stack_check_slug_is_fast(stack):
    api = stack.client("api")
    started = time.monotonic()
    for _ in range(20):
        api.get("/api/internal/check-slug?domain=nosuch.localhost")
    assert (time.monotonic() - started) / 20 < 0.5


@pytest.mark.stack
def test_stack_static_and_health(stack):
    api = stack.client("api")
    assert api.get("/static/robot.css").status_code == 200
    assert api.get("/healthz").json()["ok"] is True
    with pytest.raises(httpx2.HTTPStatusError):
        api.get("/static/nope.css").raise_for_status()


def test_check_slug_refuses_reserved_names_even_with_a_row(client, store, alpha):
    # A row made before a name joined the list (or written by hand) still gets no certificate.
    store.insert_wiki("mta-sts", ALICE[0], "Old", True)
    store.insert_wiki("api-v2", ALICE[0], "Old", True)
    for slug in [*sorted(RESERVED_SLUGS), *HOST_SPELLINGS_REFUSED]:
        response = client.get(f"/api/internal/check-slug?domain={slug}.localhost")
        assert response.status_code == 404 and response.json["ok"] is False, slug


def test_check_slug_allows_a_wiki_named_by_a_spelling_of_a_whole_name(client, store, alpha):
    # Reserved only whole: a wiki named true1 or dav2 gets its certificate.
    for slug in WHOLE_NAME_SPELLINGS_FREE:
        store.insert_wiki(slug, ALICE[0], slug, True)
        response = client.get(f"/api/internal/check-slug?domain={slug}.localhost")
        assert response.status_code == 200 and response.json["slug"] == slug, slug
