"""The platform schema's migrations: what `robot init` makes, adopts and refuses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app.core.database import create_engine
from app.core.database import head_revision
from app.core.database import upgrade
from app.core.errors import ConfigError
from app.core.errors import NotFound
from app.core.platform import Platform
from app.core.platform import init_instance
from app.core.schema import metadata
from app.core.store import Store
from app.core.wikis import create_wiki

PRE_ALEMBIC_SQL = Path(__file__).parent / "data" / "pre_alembic_schema.sql"

pytestmark = pytest.mark.both_engines


def test_migrated_schema_is_what_the_store_queries(store):
    """core/schema.py and the migrations describe the same tables, on every engine."""
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_init_reports_the_migration_once(settings):
    first = init_instance(settings)
    assert any(f"to schema {head_revision()}" in line for line in first)
    assert not any("schema" in line for line in init_instance(settings))


def test_health_names_a_database_that_needs_init(settings):
    settings.data_dir.mkdir(parents=True)
    store = Store(settings.database_url)
    try:
        assert "run 'robot init'" in store.schema_problem()
        store.migrate()
        assert store.schema_problem() is None
    finally:
        store.close()


@pytest.fixture
def pre_alembic_db(tmp_path) -> Path:
    """A robot.db file exactly as the code before Alembic made it, with rows in every table."""
    path = tmp_path / "data" / "robot.db"
    path.parent.mkdir(parents=True)
    connection = sqlite3.connect(path)
    connection.executescript(PRE_ALEMBIC_SQL.read_text())
    connection.close()
    return path


@pytest.mark.sqlite_only
def test_a_pre_alembic_database_upgrades_in_place_with_every_row(settings, pre_alembic_db):
    assert pre_alembic_db == settings.db_path
    done = init_instance(settings)
    assert any(f"to schema {head_revision()}" in line for line in done)
    platform = Platform.load(settings)
    store = platform.store
    try:
        assert store.schema_version() == head_revision()
        wiki = store.get_wiki("oldwiki")
        assert (wiki.display_name, wiki.is_public, wiki.page_count, wiki.size_bytes) == (
            "Old Wiki",
            True,
            3,
            4096,
        )
        assert [(m.did, m.role) for m in store.list_members("oldwiki")] == [
            ("did:plc:old", "admin"),
            ("did:plc:friend", "editor"),
        ]
        token, role, handle = store.authenticate_token("robot_oldsecret", "oldwiki")
        assert (token.id, token.label, role, handle) == (
            "tok_old",
            "agent",
            "editor",
            "friend.test",
        )
        # Users from before migration 0005 count as signed in (at their creation).
        old = store.get_user("did:plc:old")
        assert old.signed_in and old.last_sign_in_at == old.created_at
        # The adopted database keeps working for writes, foreign keys and cascades included.
        store.upsert_user("did:plc:new", "new.test")
        create_wiki(settings, store, "newwiki", "did:plc:new")
        store.delete_wiki_row("oldwiki")
        assert store.list_tokens("newwiki") == []
        with pytest.raises(NotFound):
            store.get_token("tok_old")
    finally:
        store.close()


@pytest.mark.sqlite_only
def test_a_database_of_unknown_shape_is_refused_untouched(settings):
    settings.db_path.parent.mkdir(parents=True)
    connection = sqlite3.connect(settings.db_path)
    connection.execute("CREATE TABLE users (name TEXT)")
    connection.execute("INSERT INTO users VALUES ('someone else')")
    connection.commit()
    connection.close()
    with pytest.raises(ConfigError, match="no schema version robot knows"):
        init_instance(settings)
    connection = sqlite3.connect(settings.db_path)
    tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
    rows = connection.execute("SELECT * FROM users").fetchall()
    connection.close()
    assert (tables, rows) == (["users"], [("someone else",)])


@pytest.mark.sqlite_only
def test_an_upgrade_leaves_the_connection_with_foreign_keys_on(settings, pre_alembic_db):
    # The upgrade turns them off around its table rebuilds; the pooled connection that ran it
    # is used again afterwards and must cascade deletes as every other connection does.
    engine = create_engine(settings.database_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
