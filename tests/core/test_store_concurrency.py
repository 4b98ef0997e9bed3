"""Races between processes on the platform DB: what SQLite serialises, PostgreSQL must hold too.

Each test starts real processes (spawned, so no state is shared but the database) that meet at
a barrier and then act at once.
"""

from __future__ import annotations

import multiprocessing
import time

import pytest

from app.core.database import head_revision
from app.core.errors import Conflict
from app.core.platform import Platform
from app.core.platform import init_instance
from app.core.settings import Settings
from app.core.store import Store
from app.core.wikis import create_wiki

pytestmark = pytest.mark.both_engines

SPAWN = multiprocessing.get_context("spawn")
RACES = 8  # slugs raced for; each race is two processes creating the same one
JOIN_TIMEOUT = 120  # seconds; a deadlock fails the test instead of hanging it


def _create_racing(env: dict, slug: str, owner: str, barrier, results) -> None:
    platform = Platform.load(Settings.from_env(env))
    barrier.wait()
    try:
        create_wiki(platform.settings, platform.store, slug, owner)
        results.put((slug, "created"))
    except Conflict:
        results.put((slug, "conflict"))
    except Exception as error:  # reported to the test, which fails on it
        results.put((slug, f"{type(error).__name__}: {error}"))
    finally:
        platform.store.close()


def _authenticate_until_refused(env: dict, secret: str, barrier, results) -> None:
    platform = Platform.load(Settings.from_env(env))
    uses = 0
    barrier.wait()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if platform.store.authenticate_token(secret, "alpha") is None:
                results.put(("refused", uses))
                return
            uses += 1
        results.put(("never refused", uses))
    except Exception as error:
        results.put((f"{type(error).__name__}: {error}", uses))
    finally:
        platform.store.close()


def _migrate_racing(env: dict, barrier, results) -> None:
    store = Store(Settings.from_env(env).database_url)
    barrier.wait()
    try:
        results.put(store.migrate())
    except Exception as error:
        results.put(f"{type(error).__name__}: {error}")
    finally:
        store.close()


def _environ(settings: Settings) -> dict:
    env = {"ROBOT_DATA_DIR": str(settings.data_dir)}
    if settings.db_url:
        env["ROBOT_DB_URL"] = settings.db_url
    return env


def _run(processes) -> None:
    for process in processes:
        process.start()
    for process in processes:
        process.join(JOIN_TIMEOUT)
        if process.is_alive():
            process.kill()
            pytest.fail("a racing process hung (deadlock?)")


def test_robot_init_on_several_hosts_at_once_migrates_once(settings):
    """Deploys run `robot init` on every host of a shared database at the same moment."""
    settings.data_dir.mkdir(parents=True)
    results, barrier = SPAWN.Queue(), SPAWN.Barrier(4)
    _run(
        [
            SPAWN.Process(target=_migrate_racing, args=(_environ(settings), barrier, results))
            for _ in range(4)
        ]
    )
    assert [results.get(timeout=10) for _ in range(4)] == [head_revision()] * 4
    store = Store(settings.database_url)
    try:
        assert store.schema_problem() is None
    finally:
        store.close()


def test_two_processes_creating_the_same_wiki_make_exactly_one(settings, users):
    alice, bob = users
    init_instance(settings)
    results = SPAWN.Queue()
    # The parent must hold every barrier until the children have it (spawn pickles by name).
    processes, barriers = [], [SPAWN.Barrier(2) for _ in range(RACES)]
    for race, barrier in enumerate(barriers):
        for owner in (alice, bob):
            args = (_environ(settings), f"race{race}", owner, barrier, results)
            processes.append(SPAWN.Process(target=_create_racing, args=args))
    _run(processes)
    outcomes: dict[str, list[str]] = {}
    for _ in processes:
        slug, outcome = results.get(timeout=10)
        outcomes.setdefault(slug, []).append(outcome)
    platform = Platform.load(settings)
    try:
        for race in range(RACES):
            slug = f"race{race}"
            assert sorted(outcomes[slug]) == ["conflict", "created"], outcomes[slug]
            wiki = platform.store.get_wiki(slug)
            # One owner, one membership, one repo; the loser left nothing behind.
            assert [m.did for m in platform.store.list_members(slug)] == [wiki.owner_did]
            assert (settings.wiki_dir(slug) / "repo" / ".git").is_dir()
        leftovers = [p.name for p in settings.wiki_base.iterdir() if p.name.startswith(".")]
        assert leftovers == []
    finally:
        platform.store.close()


def test_a_token_revoked_while_in_use_stops_working_at_once(wikis):
    store = wikis.store
    alice = store.get_wiki("alpha").owner_did
    token, secret = store.create_token("alpha", alice, "editor", "agent")
    results = SPAWN.Queue()
    barrier = SPAWN.Barrier(3)
    users_of_token = [
        SPAWN.Process(
            target=_authenticate_until_refused,
            args=(_environ(wikis.settings), secret, barrier, results),
        )
        for _ in range(2)
    ]
    for process in users_of_token:
        process.start()
    barrier.wait()
    time.sleep(0.5)  # both are mid-loop, reading and recording the token's use
    store.revoke_token(token.id)
    assert store.authenticate_token(secret, "alpha") is None
    for process in users_of_token:
        process.join(JOIN_TIMEOUT)
        assert not process.is_alive(), "a process using the token hung"
    outcomes = [results.get(timeout=10) for _ in users_of_token]
    assert [outcome for outcome, _ in outcomes] == ["refused", "refused"], outcomes
    assert all(uses > 0 for _, uses in outcomes), outcomes
    assert store.get_token(token.id).revoked_at is not None
