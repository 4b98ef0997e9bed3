import time

import pytest

from app.core.errors import Unauthorized
from app.core.identity import authenticate
from app.core.signing import ACCESS_TOKEN_TYP
from app.core.signing import SESSION_AUDIENCE
from app.core.signing import SESSION_TYP
from tests.conftest import oauth_grant

# The store's suite: every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_engines


def caller(platform, slug, authorization=None, cookie=None):
    return authenticate(
        platform.settings, platform.key, platform.store, slug, authorization, cookie
    )


def oauth_token(platform, did, scope):
    settings = platform.settings
    grant = oauth_grant(platform.store, did, "alpha")
    return platform.key.mint_access_token(
        did, settings.mcp_url("alpha"), settings.auth_origin, scope, 60, "client", grant
    )


def session(platform, did, ttl=60):
    return platform.key.mint_session(did, "h.test", platform.settings.auth_origin, ttl)


def test_session_gives_role_in_this_wiki_only(wikis, users):
    jwt = session(wikis, users[0])
    assert caller(wikis, "alpha", f"Bearer {jwt}").role == "admin"
    assert caller(wikis, "beta", f"Bearer {jwt}").role is None


def test_cookie_session_works_on_its_own_wiki_host_only(wikis, users):
    store = wikis.store
    _, secret = store.create_session(users[0], "alpha.localhost", 60)
    found = caller(wikis, "alpha", cookie=secret)
    assert (found.role, found.via, found.did) == ("admin", "session", users[0])
    # The same credential copied to another wiki host (or the apex) is nobody's there.
    assert caller(wikis, "beta", cookie=secret).is_anonymous


@pytest.mark.parametrize("cookie", ["not-a-session", "", "x" * 500])
def test_bad_cookie_is_anonymous(wikis, users, cookie):
    assert caller(wikis, "alpha", cookie=cookie).is_anonymous


def test_session_jwt_is_not_a_cookie(wikis, users):
    assert caller(wikis, "alpha", cookie=session(wikis, users[0])).is_anonymous


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer a.b.c", "Basic abc", "Bearer "])
def test_bad_bearer_is_unauthorized(wikis, header):
    with pytest.raises(Unauthorized):
        caller(wikis, "alpha", header)


def test_expired_session_rejected(wikis, users):
    claims = {"iss": wikis.settings.auth_origin, "sub": users[0], "aud": SESSION_AUDIENCE}
    jwt = wikis.key.sign({**claims, "exp": int(time.time()) - 3600}, SESSION_TYP)
    with pytest.raises(Unauthorized):
        caller(wikis, "alpha", f"Bearer {jwt}")


def test_token_of_alpha_fails_on_beta(wikis, users):
    _, secret = wikis.store.create_token("alpha", users[0], "viewer")
    assert caller(wikis, "alpha", f"Bearer {secret}").role == "viewer"
    with pytest.raises(Unauthorized):
        caller(wikis, "beta", f"Bearer {secret}")


def test_access_token_bound_to_its_wiki(wikis, users):
    token = oauth_token(wikis, users[0], "wiki:read wiki:write")
    assert caller(wikis, "alpha", f"Bearer {token}").via == "oauth"
    with pytest.raises(Unauthorized):
        caller(wikis, "beta", f"Bearer {token}")


def test_access_token_is_not_a_session(wikis, users):
    token = oauth_token(wikis, users[0], "wiki:read wiki:write")
    with pytest.raises(Unauthorized):
        wikis.key.verify_session(token, wikis.settings.auth_origin)
    with pytest.raises(Unauthorized):
        wikis.key.verify(
            session(wikis, users[0]), ACCESS_TOKEN_TYP, wikis.settings.mcp_url("alpha")
        )


def test_public_wiki_anonymous_reads_only(wikis):
    wikis.store.update_wiki("alpha", is_public=True)
    anonymous = caller(wikis, "alpha")
    assert anonymous.permissions(True) == ("READ",)
    assert anonymous.permissions(False) == ()


@pytest.mark.parametrize(
    "scope, role, read_only",
    [("wiki:read wiki:write", "admin", False), ("wiki:read", "viewer", True)],
)
def test_access_token_scope_limits_the_live_role(wikis, users, scope, role, read_only):
    found = caller(wikis, "alpha", f"Bearer {oauth_token(wikis, users[0], scope)}")
    assert (found.role, found.read_only_grant) == (role, read_only)


@pytest.mark.parametrize("scope", ["", "wiki", "admin"])
def test_access_token_without_a_known_scope_is_refused(wikis, users, scope):
    with pytest.raises(Unauthorized):
        caller(wikis, "alpha", f"Bearer {oauth_token(wikis, users[0], scope)}")
