"""ATProto login requests in flight: kept by state, taken once, purged when stale."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.both_engines


def test_a_login_request_is_taken_once(store):
    store.save_login_request("s1", {"issuer": "https://as.example", "did": None})
    data, created_at = store.take_login_request("s1")
    assert data == {"issuer": "https://as.example", "did": None}
    assert abs(created_at - time.time()) < 5
    assert store.take_login_request("s1") is None


@pytest.mark.parametrize("state", ["", "unknown", "x" * 500])
def test_unknown_states_take_nothing(store, state):
    assert store.take_login_request(state) is None


def test_stale_login_requests_are_purged(store, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr("app.core.store._now", lambda: 1000)
        store.save_login_request("old", {})
    store.save_login_request("new", {})
    assert store.purge_login_requests(2000) == 1
    assert store.take_login_request("old") is None
    assert store.take_login_request("new") is not None
