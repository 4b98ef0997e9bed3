"""Shared fixtures. Each block below belongs to one area; add new fixtures as a new block."""

from __future__ import annotations

import os

import pytest

from app.platform import Platform
from app.platform import init_instance
from app.settings import Settings

ALICE = ("did:plc:alice", "alice.test")
BOB = ("did:plc:bob", "bob.test")


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch):
    """Tests never see the developer's ROBOT_* or platform variables."""
    for name in list(os.environ):
        if name.startswith("ROBOT_") or name in (
            "MULTI_TENANT",
            "PLATFORM_DOMAIN",
            "WIKI_BASE",
            "SIGNING_KEY_PATH",
            "GUNICORN_BIND",
        ):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env({"ROBOT_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
def platform(settings) -> Platform:
    init_instance(settings)
    loaded = Platform.load(settings)
    yield loaded
    loaded.store.close()


@pytest.fixture
def store(platform):
    return platform.store


@pytest.fixture
def users(store):
    """Alice and Bob exist; returns their DIDs."""
    store.upsert_user(*ALICE)
    store.upsert_user(*BOB)
    return ALICE[0], BOB[0]
