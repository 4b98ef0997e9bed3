"""Server-side browser sessions: one sign-in, one credential per host, handoffs used once."""

from __future__ import annotations

import time

import pytest

from app.core.errors import BadRequest
from app.core.errors import NotFound
from app.core.schema import sessions

pytestmark = pytest.mark.both_engines

APEX, ALPHA, BETA = "localhost", "alpha.localhost", "beta.localhost"


def _expire(store, session_id: str, when: int = 1) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            sessions.update().where(sessions.c.id == session_id).values(expires_at=when)
        )


def test_a_credential_works_on_its_host_only(store, users):
    session, secret = store.create_session(users[0], APEX, 3600, "Firefox", {"pds": "x"})
    found = store.session_for_secret(secret, APEX)
    assert found == session and found.handle == "alice.test" and found.user_agent == "Firefox"
    assert store.session_for_secret(secret, ALPHA) is None
    assert store.session_for_secret(secret, "LOCALHOST") == session  # host names are caseless
    assert store.session_upstream(session.id) == {"pds": "x"}


def test_handoff_gives_the_wiki_host_its_own_credential_once(store, users):
    session, apex_secret = store.create_session(users[0], APEX, 3600)
    code = store.create_handoff(session.id, ALPHA)
    assert store.redeem_handoff(code, BETA) is None  # a code for alpha, redeemed by beta
    code = store.create_handoff(session.id, ALPHA)
    redeemed, alpha_secret = store.redeem_handoff(code, ALPHA)
    assert redeemed.id == session.id and alpha_secret != apex_secret
    assert store.redeem_handoff(code, ALPHA) is None  # single use
    assert store.session_for_secret(alpha_secret, ALPHA).id == session.id
    assert store.session_for_secret(alpha_secret, BETA) is None
    assert store.session_for_secret(alpha_secret, APEX) is None


@pytest.mark.parametrize("code", [None, "", "nope", "x" * 500])
def test_unknown_handoff_codes_redeem_nothing(store, users, code):
    assert store.redeem_handoff(code, ALPHA) is None


def test_an_expired_handoff_is_refused_and_consumed(store, users):
    session, _ = store.create_session(users[0], APEX, 3600)
    code = store.create_handoff(session.id, ALPHA, ttl=-1)
    assert store.redeem_handoff(code, ALPHA) is None


def test_ending_a_session_ends_it_on_every_host(store, users):
    session, apex_secret = store.create_session(users[0], APEX, 3600)
    _, alpha_secret = store.redeem_handoff(store.create_handoff(session.id, ALPHA), ALPHA)
    pending = store.create_handoff(session.id, BETA)
    assert not store.end_session(session.id, did=users[1])  # not Bob's to end
    assert store.end_session(session.id, did=users[0])
    assert store.session_for_secret(apex_secret, APEX) is None
    assert store.session_for_secret(alpha_secret, ALPHA) is None
    assert store.redeem_handoff(pending, BETA) is None
    assert not store.end_session(session.id)  # already ended
    with pytest.raises(BadRequest):
        store.create_handoff(session.id, ALPHA)


def test_sessions_are_listed_and_ended_per_user(store, users):
    first, _ = store.create_session(users[0], APEX, 3600)
    second, _ = store.create_session(users[0], APEX, 3600)
    bobs, bob_secret = store.create_session(users[1], APEX, 3600)
    assert {s.id for s in store.list_sessions(users[0])} == {first.id, second.id}
    assert store.end_sessions_of(users[0]) == 2
    assert store.list_sessions(users[0]) == []
    assert store.session_for_secret(bob_secret, APEX).id == bobs.id


def test_expired_sessions_are_dead_and_purged_later(store, users):
    session, secret = store.create_session(users[0], APEX, 3600)
    _expire(store, session.id)
    assert store.session_for_secret(secret, APEX) is None
    assert store.list_sessions(users[0]) == []
    assert store.purge_sessions() == 1
    assert store.get_session(session.id) is None


def test_last_seen_is_recorded_at_most_once_a_minute(store, users):
    session, secret = store.create_session(users[0], APEX, 3600)
    with store.engine.begin() as connection:
        connection.execute(
            sessions.update().where(sessions.c.id == session.id).values(last_seen_at=1)
        )
    assert store.session_for_secret(secret, APEX) is not None
    assert store.get_session(session.id).last_seen_at >= int(time.time()) - 5


@pytest.mark.parametrize("host", ["", "a/b", "alpha.localhost:8000", "x" * 300])
def test_bad_hosts_are_refused(store, users, host):
    with pytest.raises(BadRequest):
        store.create_session(users[0], host, 3600)


def test_a_session_needs_a_known_user_and_a_lifetime(store, users):
    with pytest.raises(NotFound):
        store.create_session("did:plc:nobody", APEX, 3600)
    with pytest.raises(BadRequest):
        store.create_session(users[0], APEX, 0)


def test_deleting_a_user_deletes_their_sessions(store, users):
    session, secret = store.create_session(users[0], APEX, 3600)
    from app.core.schema import users as users_table

    with store.engine.begin() as connection:
        connection.execute(users_table.delete().where(users_table.c.did == users[0]))
    assert store.session_for_secret(secret, APEX) is None
    assert store.get_session(session.id) is None
