"""/authorize: sign-in first, then consent only a member of the wiki can give (in process)."""

import re
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest

from app.auth_server import create_app
from app.core.schema import oauth_grants
from app.web.session_cookie import cookie_name
from tests.auth.test_oauth_token import REDIRECT
from tests.auth.test_oauth_token import VERIFIER
from tests.auth.test_oauth_token import challenge
from tests.auth.test_oauth_token import redeem

CAROL = ("did:plc:carol", "carol.test")


@pytest.fixture
def client(wikis):
    return create_app(wikis.settings).test_client()


@pytest.fixture
def registered(client):
    body = {"client_name": "Claude <b>", "redirect_uris": [REDIRECT]}
    return client.post("/register", json=body).json["client_id"]


def authorize_url(platform, registered: str, **changes) -> str:
    params = {
        "response_type": "code",
        "client_id": registered,
        "redirect_uri": REDIRECT,
        "state": "st4te",
        "scope": "wiki:read wiki:write",
        "code_challenge": challenge(),
        "code_challenge_method": "S256",
        "resource": platform.settings.mcp_url("alpha"),
        **changes,
    }
    return "/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def sign_in(client, platform, did: str) -> None:
    _session, secret = platform.store.create_session(did, platform.settings.platform_domain, 600)
    client.set_cookie(cookie_name(platform.settings), secret)


def member(client, platform, role: str | None) -> str:
    """Sign in as Carol, who holds `role` in alpha (None: not a member); return her DID."""
    platform.store.upsert_user(*CAROL)
    if role:
        platform.store.set_member("alpha", CAROL[0], role)
    sign_in(client, platform, CAROL[0])
    return CAROL[0]


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


def decide(client, url: str, decision: str):
    csrf = csrf_of(client.get(url).get_data(as_text=True))
    return client.post(url, data={"csrf": csrf, "decision": decision})


def redirect_params(response) -> dict:
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_without_a_session_the_user_signs_in_first(client, wikis, registered):
    url = authorize_url(wikis, registered)
    response = client.get(url)
    assert response.status_code == 303
    login = urlsplit(response.headers["Location"])
    assert login.path == "/auth/login"
    assert parse_qs(login.query)["return_to"] == [wikis.settings.auth_origin + url]


def test_consent_page_names_client_host_wiki_and_access(client, wikis, registered):
    member(client, wikis, "editor")
    response = client.get(authorize_url(wikis, registered))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "claude.ai" in page and "alpha.localhost" in page and "unverified" in page
    assert "Claude &lt;b&gt;" in page and "edit" in page
    assert "form-action 'self' https://claude.ai" in response.headers["Content-Security-Policy"]


def test_approval_redirects_with_code_state_and_issuer(client, wikis, registered):
    member(client, wikis, "editor")
    response = decide(client, authorize_url(wikis, registered), "approve")
    params = redirect_params(response)
    assert (response.status_code, params["state"]) == (302, "st4te")
    assert params["iss"] == wikis.settings.auth_origin
    token = redeem(client, registered, params["code"]).json
    assert token["scope"] == "wiki:read wiki:write"


def test_a_viewer_grants_read_only(client, wikis, registered):
    member(client, wikis, "viewer")
    url = authorize_url(wikis, registered)
    assert "edit" not in client.get(url).get_data(as_text=True)
    code = redirect_params(decide(client, url, "approve"))["code"]
    assert redeem(client, registered, code).json["scope"] == "wiki:read"


def test_a_non_member_cannot_approve(client, wikis, registered):
    member(client, wikis, None)
    url = authorize_url(wikis, registered)
    page = client.get(url)
    assert page.status_code == 403 and "not a member" in page.get_data(as_text=True)
    params = redirect_params(decide(client, url, "approve"))
    assert params["error"] == "access_denied" and "code" not in params
    assert wikis.store._all(oauth_grants.select()) == []


def test_denial_redirects_with_access_denied(client, wikis, registered):
    member(client, wikis, "admin")
    params = redirect_params(decide(client, authorize_url(wikis, registered), "deny"))
    assert (params["error"], params["state"]) == ("access_denied", "st4te")
    assert params["iss"] == wikis.settings.auth_origin


@pytest.mark.parametrize("csrf", [None, "0" * 64, "é", ["a", "b"]])
def test_a_forged_approval_is_refused(client, wikis, registered, csrf):
    member(client, wikis, "editor")
    form = {"decision": "approve"} if csrf is None else {"decision": "approve", "csrf": csrf}
    response = client.post(authorize_url(wikis, registered), data=form)
    assert response.status_code == 400 and "Location" not in response.headers
    assert wikis.store._all(oauth_grants.select()) == []


@pytest.mark.parametrize(
    "changes",
    [{"client_id": "mcp_unknown"}, {"client_id": None}, {"redirect_uri": "https://evil.example/"}],
)
def test_unverified_client_or_redirect_gets_an_error_page(client, wikis, registered, changes):
    member(client, wikis, "editor")
    response = client.get(authorize_url(wikis, registered, **changes))
    assert response.status_code == 400 and "Location" not in response.headers
    assert "cannot connect" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain", "code_challenge": VERIFIER}, "invalid_request"),
        ({"resource": None}, "invalid_target"),
        ({"resource": "https://evil.example/mcp"}, "invalid_target"),
        ({"resource": "http://nosuch.localhost:8001/mcp"}, "invalid_target"),
        ({"resource": "http://[::1"}, "invalid_target"),
        ({"scope": "admin"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_bad_request_of_a_verified_client_redirects_an_error(
    client, wikis, registered, changes, error
):
    member(client, wikis, "editor")
    params = redirect_params(client.get(authorize_url(wikis, registered, **changes)))
    assert (params["error"], params["state"]) == (error, "st4te")
    assert params["iss"] == wikis.settings.auth_origin


def test_scope_omitted_means_every_supported_scope(client, wikis, registered):
    member(client, wikis, "editor")
    code = redirect_params(decide(client, authorize_url(wikis, registered, scope=None), "approve"))
    assert redeem(client, registered, code["code"]).json["scope"] == "wiki:read wiki:write"
