import pytest
from sqlalchemy import select

from app.core.database import head_revision
from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import NotFound
from app.core.errors import Unavailable
from app.core.schema import metadata
from app.core.settings import Settings
from app.core.store import Store
from app.core.wikis import create_wiki
from app.core.wikis import delete_wiki
from tests.conftest import free_ports

# The store's suite: every test here runs on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_engines


def test_migrate_is_idempotent(store):
    assert store.migrate() == store.schema_version() == head_revision()
    assert store.schema_problem() is None


def test_owner_is_admin(settings, store, users):
    alice, _ = users
    create_wiki(settings, store, "alpha", alice)
    assert store.role_of("alpha", alice) == "admin"


def test_duplicate_wiki_conflicts(settings, store, users):
    create_wiki(settings, store, "alpha", users[0])
    with pytest.raises(Conflict):
        create_wiki(settings, store, "alpha", users[1])


@pytest.mark.parametrize("slug", ["ab", "Alpha", "-abc", "abc-", "a..b", "www", "wiki✓", "x" * 31])
def test_bad_slug_leaves_nothing(settings, store, users, slug):
    with pytest.raises(BadRequest):
        create_wiki(settings, store, slug, users[0])
    assert store.list_wikis() == []
    assert not any(settings.wiki_base.iterdir())


def test_unknown_owner(settings, store):
    with pytest.raises(NotFound):
        create_wiki(settings, store, "alpha", "did:plc:nobody")
    assert store.find_wiki("alpha") is None


def test_delete_removes_row_and_folder(settings, store, users):
    create_wiki(settings, store, "alpha", users[0])
    delete_wiki(settings, store, "alpha")
    assert store.find_wiki("alpha") is None
    assert not settings.wiki_dir("alpha").exists()


def test_token_is_bound_to_its_wiki(settings, store, users):
    alice, _ = users
    create_wiki(settings, store, "alpha", alice)
    create_wiki(settings, store, "beta", alice)
    _, secret = store.create_token("alpha", alice, "editor")
    assert store.authenticate_token(secret, "alpha")[1] == "editor"
    assert store.authenticate_token(secret, "beta") is None


def test_token_role_never_exceeds_membership(settings, store, users):
    alice, bob = users
    create_wiki(settings, store, "alpha", alice)
    store.set_member("alpha", bob, "editor")
    _, secret = store.create_token("alpha", bob, "editor")
    store.set_member("alpha", bob, "viewer")
    assert store.authenticate_token(secret, "alpha")[1] == "viewer"


def test_removed_member_token_dies(settings, store, users):
    alice, bob = users
    create_wiki(settings, store, "alpha", alice)
    store.set_member("alpha", bob, "editor")
    _, secret = store.create_token("alpha", bob, "editor")
    store.remove_member("alpha", bob)
    store.set_member("alpha", bob, "editor")
    assert store.authenticate_token(secret, "alpha") is None


def test_secret_is_stored_only_as_hash(settings, store, users):
    create_wiki(settings, store, "alpha", users[0])
    _, secret = store.create_token("alpha", users[0], "viewer")
    with store.engine.connect() as connection:
        dump = [
            repr(row)
            for table in metadata.sorted_tables
            for row in connection.execute(select(table))
        ]
    assert dump and secret not in "\n".join(dump)


def _drop_every_connection(settings) -> None:
    """What a PostgreSQL restart or failover does to the store's pooled connections."""
    from sqlalchemy import create_engine
    from sqlalchemy import text

    admin = create_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    admin.dispose()


def test_dropped_connections_cost_reads_nothing_and_a_write_at_most_one_503(wikis):
    settings, store = wikis.settings, wikis.store
    if settings.database_is_sqlite:
        pytest.skip("SQLite has no server to drop connections")
    alice = store.get_wiki("alpha").owner_did
    # Reads are tried again on a fresh connection; a write is not (it may have been done).
    calls = {
        "find_wiki": (lambda: store.find_wiki("alpha"), 0),
        "role_of": (lambda: store.role_of("alpha", alice), 0),
        "list_wikis": (lambda: store.list_wikis(alice), 0),
        "schema_problem": (lambda: store.schema_problem() or "current", 0),
        "update_wiki": (lambda: store.update_wiki("alpha", display_name="Alpha"), 1),
    }
    for name, (call, allowed) in calls.items():
        call()  # a pooled connection exists
        _drop_every_connection(settings)
        failures = 0
        for _ in range(3):
            try:
                assert call() is not None, name
            except Unavailable as error:
                assert error.status == 503 and "127.0.0.1" not in error.message
                failures += 1
        assert failures <= allowed, name


def test_a_database_that_does_not_answer_is_a_503_not_a_crash(tmp_path):
    unreachable = f"postgresql+psycopg://robot:s3cret@127.0.0.1:{free_ports(1)[0]}/robot"
    store = Store(Settings.from_env({"ROBOT_DB_URL": unreachable}).database_url)
    calls = (
        lambda: store.find_wiki("alpha"),
        lambda: store.role_of("alpha", "did:plc:alice"),
        lambda: store.authenticate_token("robot_" + "x" * 43, "alpha"),
        lambda: store.list_wikis(),
        lambda: store.upsert_user("did:plc:alice", "alice.test"),
        store.schema_problem,
    )
    for call in calls:
        with pytest.raises(Unavailable) as error:
            call()
        assert "s3cret" not in str(error.value) and error.value.status == 503
    store.close()
