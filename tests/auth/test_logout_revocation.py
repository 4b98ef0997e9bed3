"""Logout after a real sign-in (the fake ATProto network over loopback): the session ends on
every host and its refresh token is revoked at the user's authorization server."""

from __future__ import annotations

import json
import re

import pytest

from app.auth_server import create_app
from app.core.schema import sessions
from tests.auth.test_login_views import sign_in


@pytest.fixture
def client(platform, network):
    app = create_app(platform.settings)
    app.extensions["robot_atproto_network"] = network
    return app.test_client()


@pytest.fixture
def alice(fake_net, client, store) -> str:
    """Alice, signed in through her (fake) PDS's authorization server in `client`."""
    did = fake_net.add_account("alice.test")
    sign_in(client, fake_net, "alice.test")
    return did


def _logout(client):
    page = client.get("/auth/logout").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/auth/logout", data={"csrf_token": token})


def test_logout_revokes_the_refresh_token_and_ends_every_host(client, store, fake_net, alice):
    [session] = store.list_sessions(alice)
    refresh_token = store.session_upstream(session.id)["refresh_token"]
    code = store.create_handoff(session.id, "alpha.localhost")
    _session, wiki_secret = store.redeem_handoff(code, "alpha.localhost")
    assert _logout(client).status_code == 303
    assert fake_net.revoked == [refresh_token]
    assert store.list_sessions(alice) == []
    assert store.session_for_secret(wiki_secret, "alpha.localhost") is None


def test_an_unreachable_authorization_server_does_not_block_logout(client, store, alice):
    [session] = store.list_sessions(alice)
    upstream = store.session_upstream(session.id)
    upstream["revocation_endpoint"] = "http://127.0.0.1:9/oauth/revoke"  # nothing listens
    with store.engine.begin() as connection:
        connection.execute(
            sessions.update()
            .where(sessions.c.id == session.id)
            .values(upstream=json.dumps(upstream))
        )
    assert _logout(client).status_code == 303
    assert store.list_sessions(alice) == []
