"""Hostile input through every parameter of /register, /authorize and /token: a clear 4xx
(or a redirect to the verified client), never a 500 — error descriptions quote inputs, and
RFC 6749 §5.2 (and authlib) allow no quote, backslash, control or non-ASCII character there."""

import pytest

from app.auth.oauth_clients import LIST_FIELDS
from app.auth.oauth_clients import TEXT_FIELDS
from app.auth.oauth_errors import MAX_DESCRIPTION
from app.auth.oauth_errors import quoted
from app.auth.oauth_errors import safe_description
from tests.auth.test_oauth_consent import authorize_url
from tests.auth.test_oauth_consent import member
from tests.auth.test_oauth_token import REDIRECT
from tests.auth.test_oauth_token import client  # noqa: F401 (fixture)
from tests.auth.test_oauth_token import code  # noqa: F401 (fixture)
from tests.auth.test_oauth_token import redeem
from tests.auth.test_oauth_token import refresh
from tests.auth.test_oauth_token import registered  # noqa: F401 (fixture)

# Characters that broke or could break an error description, a URL or a page.
HOSTILE = ['"', "\\", "'", "\r\n", "\x00", "\x85", "\u202e", "\U0001f600", "%5C", "x" * 3000]
ALLOWED = {chr(c) for c in range(0x20, 0x7F)} - {'"', "\\"}


def _embed(char: str, value: str) -> str:
    """`value` with `char` in its middle: the input still looks almost right."""
    middle = len(value) // 2
    return value[:middle] + char + value[middle:]


def _json_error(response) -> None:
    assert response.status_code in (400, 401), (response.status_code, response.data[:300])
    body = response.json
    assert body["error"]
    assert set(body.get("error_description", "")) <= ALLOWED


@pytest.mark.parametrize("char", HOSTILE)
def test_safe_description_keeps_only_what_rfc6749_allows(char):
    text = safe_description("at " + char * 500)
    assert set(text) <= ALLOWED and len(text) <= MAX_DESCRIPTION
    assert set(quoted([char, 1])) <= ALLOWED


REGISTER_FIELDS = TEXT_FIELDS + LIST_FIELDS


@pytest.mark.parametrize("char", HOSTILE)
@pytest.mark.parametrize("field", REGISTER_FIELDS)
def test_hostile_registration_is_refused_or_stored_safely(client, wikis, field, char):  # noqa: F811
    body = {"client_name": "x", "redirect_uris": ["https://ok.example/cb"]}
    if field in LIST_FIELDS:
        start = {"redirect_uris": "https://ok.example/cb", "grant_types": "authorization_code"}
        body[field] = [_embed(char, start.get(field, "https://ok.example/x"))]
    else:
        body[field] = _embed(char, "https://ok.example/about")
    response = client.post("/auth/register", json=body)
    assert response.status_code in (201, 400), (response.status_code, response.data[:300])
    if response.status_code == 400:
        _json_error(response)


@pytest.mark.parametrize(
    "uri", ['http://e"vil.com/cb', "http://e\\vil.com/cb", 'javascript:"x', "http://x'y/cb"]
)
def test_the_reported_registrations_are_refused(client, wikis, uri):  # noqa: F811
    response = client.post("/auth/register", json={"client_name": "x", "redirect_uris": [uri]})
    assert response.status_code == 400
    _json_error(response)
    assert response.json["error"] == "invalid_client_metadata"


AUTHORIZE_PARAMS = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "resource",
]


@pytest.mark.parametrize("char", HOSTILE)
@pytest.mark.parametrize("param", AUTHORIZE_PARAMS)
def test_hostile_authorization_request_is_answered(client, wikis, registered, param, char):  # noqa: F811
    member(client, wikis, "editor")
    base = {
        "response_type": "code",
        "client_id": registered,
        "redirect_uri": REDIRECT,
        "state": "st4te",
        "scope": "wiki:read",
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
        "resource": wikis.settings.mcp_url("alpha"),
    }
    response = client.get(authorize_url(wikis, registered, **{param: _embed(char, base[param])}))
    assert response.status_code in (200, 302, 400, 403), (param, response.status_code)
    if response.status_code == 302:
        assert response.headers["Location"].startswith(REDIRECT + "?")


@pytest.mark.parametrize(
    "query",
    [
        "resource=http://x'y/mcp",
        "resource=http%3A%2F%2Fa%5Cb",
        "resource=http%3A%2F%2Fa%22b",
        "redirect_uri=https://claude.ai/x%22",
        "redirect_uri=https://claude.ai/x%5C",
        "response_type=a%22b",
        "response_type=a%5Cb",
    ],
)
def test_the_reported_authorization_requests_get_the_error_page(client, wikis, registered, query):  # noqa: F811
    member(client, wikis, "editor")
    name = query.split("=", 1)[0]
    url = authorize_url(wikis, registered, **{name: None}) + "&" + query
    response = client.get(url)
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 302:
        assert response.headers["Location"].startswith(REDIRECT + "?")


def test_repeated_resources_are_refused(client, wikis, registered):  # noqa: F811
    member(client, wikis, "editor")
    mcp = wikis.settings.mcp_url("alpha")
    url = authorize_url(wikis, registered) + "&resource=" + mcp
    response = client.get(url)
    assert response.status_code == 302
    assert "error=invalid_target" in response.headers["Location"]


TOKEN_PARAMS = ["grant_type", "code", "client_id", "redirect_uri", "code_verifier", "resource"]


@pytest.mark.parametrize("char", HOSTILE)
@pytest.mark.parametrize("param", TOKEN_PARAMS)
def test_hostile_code_redemption_is_refused(client, wikis, registered, code, param, char):  # noqa: F811
    base = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": registered,
        "redirect_uri": REDIRECT,
        "code_verifier": "v" * 64,
        "resource": wikis.settings.mcp_url("alpha"),
    }
    base[param] = _embed(char, base[param])
    response = client.post("/auth/token", data=base)
    _json_error(response)


@pytest.mark.parametrize("char", HOSTILE)
@pytest.mark.parametrize("param", ["refresh_token", "scope", "resource", "client_id"])
def test_hostile_refresh_is_refused(client, wikis, registered, code, param, char):  # noqa: F811
    token = redeem(client, registered, code).json["refresh_token"]
    base = {
        "refresh_token": token,
        "scope": "wiki:read",
        "resource": wikis.settings.mcp_url("alpha"),
        "client_id": registered,
    }
    response = refresh(client, registered, token, **{param: _embed(char, base[param])})
    _json_error(response)


def test_the_reported_token_requests_are_refused(client, wikis, registered, code):  # noqa: F811
    response = redeem(client, registered, code, resource="http://x'y/mcp")
    _json_error(response)
    assert response.json["error"] == "invalid_target"
    response = client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "resource": ["a", "b"]},
    )
    _json_error(response)


@pytest.mark.parametrize(
    "uri",
    [
        "https://ok.example/cb\r\nX: y",
        "https://ok.example/cb\nx",
        "https://ok.example/c\tb",
        "https://ok.example/cb\x00",
        "https://ok.example/cb\x7f",
        "https://ok.example/cb\x85",
        "https://ok.example/c b",
        "https://ok.example/cb\u202e",
        "https://ok.example/cbé",
        "https://ok.example/cb?",
        "HTTPS://ok.example/cb",
    ],
)
def test_a_redirect_uri_must_read_back_exactly(client, wikis, uri):  # noqa: F811
    """The code goes to the URI as a URL parser reads it: only one that reads back the same
    may be registered (urlsplit drops CR, LF and tabs: 'cb\\r\\nX: y' became 'cbX: y')."""
    response = client.post("/auth/register", json={"client_name": "x", "redirect_uris": [uri]})
    assert response.status_code == 400
    _json_error(response)
    assert response.json["error"] == "invalid_client_metadata"


@pytest.mark.parametrize("char", ["\u202a", "\u202e", "\u2066", "\u2069", "\u200b", "\x1b", "\x85"])
@pytest.mark.parametrize("field", ["client_name", "client_uri", "logo_uri", "policy_uri"])
def test_displayed_metadata_may_not_hide_or_reorder_text(client, wikis, field, char):  # noqa: F811
    body = {"client_name": "x", "redirect_uris": ["https://ok.example/cb"]}
    body[field] = "Claude" + char + "gpj.exe"
    response = client.post("/auth/register", json=body)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_client_metadata"


@pytest.mark.parametrize(
    "body",
    [
        {"client_name": "x" * 2001, "redirect_uris": ["https://ok.example/cb"]},
        {"client_name": "x" * 201, "redirect_uris": ["https://ok.example/cb"]},
        {"redirect_uris": ["https://ok.example/cb"] * 11},
        {"redirect_uris": ["https://ok.example/" + "x" * 2001]},
        {"redirect_uris": ["https://ok.example/cb"], "contacts": ["x" * 2001]},
    ],
)
def test_size_limits_read_as_at_most(client, wikis, body):  # noqa: F811
    response = client.post("/auth/register", json=body)
    assert response.status_code == 400
    assert "at most" in response.json["error_description"]
    assert "chars" not in response.json["error_description"]
