"""The platform database's engine and its schema migrations (Alembic), on SQLite or PostgreSQL.

SQLite (the embedded default) runs in WAL mode with foreign keys on. Writes open with
`BEGIN IMMEDIATE`, taking the write lock up front so two writers never deadlock upgrading a read
lock; reads run without a transaction. PostgreSQL (psycopg 3) reads in autocommit, one round
trip each, and writes in READ COMMITTED transactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar

import sqlalchemy
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.engine import make_url

from app.core.errors import ConfigError

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The revision that equals the schema made by robot's own migration runner before Alembic (it
# recorded 1 in SQLite's PRAGMA user_version); such a database is adopted at this revision.
PRE_ALEMBIC_REVISION = "0001"
PRE_ALEMBIC_USER_VERSION = 1
# Seconds a SQLite writer waits for another's lock before failing.
SQLITE_BUSY_TIMEOUT = 30
# An execution option: connections of the writer engine open their SQLite transaction IMMEDIATE.
_WRITE = "robot_write"
# PostgreSQL connections per process: gunicorn workers serve one request at a time, the MCP
# service runs store calls in a thread pool. Twelve workers and MCP stay far below the server's
# default max_connections (100).
POSTGRES_POOL_SIZE = 4
POSTGRES_MAX_OVERFLOW = 8
# A server that stalls must cost a request a 503 well before gunicorn's 30 s worker timeout
# kills the worker: seconds to connect, milliseconds unacknowledged on the wire (a dead peer),
# and per statement or lock wait. Migrations lift the last two (see upgrade).
POSTGRES_CONNECT_ARGS = {
    "connect_timeout": 5,
    "tcp_user_timeout": 10_000,
    "options": "-c statement_timeout=10000 -c lock_timeout=10000",
}
# Any constant: `robot init` on several hosts at once takes turns on this advisory lock.
MIGRATION_LOCK = 0x726F626F74  # "robot"


def create_engine(url: str | URL) -> Engine:
    """Return an engine for the platform DB at `url`: sqlite:///FILE or postgresql+psycopg://.

    Raises ConfigError for any other kind of URL.
    """
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = sqlalchemy.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return sqlalchemy.create_engine(
            url,
            connect_args=POSTGRES_CONNECT_ARGS,
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=POSTGRES_MAX_OVERFLOW,
            # Long-lived connections are renewed hourly, before servers or proxies time them out;
            # ones the server already dropped are handled where a query fails (disconnects).
            pool_recycle=3600,
        )
    raise ConfigError(f"the platform DB must be SQLite or PostgreSQL, not {backend}")


def reader(engine: Engine) -> Engine:
    """The engine to read through: autocommit on PostgreSQL, no transaction on SQLite."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def writer(engine: Engine) -> Engine:
    """The engine to write through: its `begin()` takes SQLite's write lock up front."""
    return engine.execution_options(**{_WRITE: True})


def _sqlite_connect(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling would BEGIN DEFERRED behind our back; we issue BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT * 1000}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(_WRITE):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, in code (no alembic.ini): our scripts, on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The newest migration's revision id (a string such as "0001")."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database at `engine` is at, or None when no migration has run."""
    with reader(engine).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Bring the schema to the head revision, in one transaction; return the head revision.

    A SQLite database made before Alembic is adopted at PRE_ALEMBIC_REVISION with every row kept.
    Raises ConfigError when the database holds tables of no schema robot knows.
    """
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        _use_wal(engine)
    with writer(engine).connect() as connection:
        if sqlite:
            # Batch migrations rebuild a SQLite table (copy, drop, rename); with foreign keys on,
            # dropping `wikis` would cascade to every membership and token. SQLite's own recipe
            # for schema changes (lang_altertable.html §7): keys off outside the transaction,
            # foreign_key_check before commit, keys on again.
            _outside_transaction(connection, "PRAGMA foreign_keys = OFF")
        try:
            with connection.begin():
                _upgrade_in(connection)
        finally:
            if sqlite:
                _outside_transaction(connection, "PRAGMA foreign_keys = ON")
    return head_revision()


def _outside_transaction(connection: Connection, pragma: str) -> None:
    # Straight to sqlite3: SQLAlchemy would autobegin (our BEGIN IMMEDIATE) first, and SQLite
    # ignores this pragma inside a transaction.
    connection.connection.driver_connection.execute(pragma)


def _upgrade_in(connection: Connection) -> None:
    """Run the migrations inside `connection`'s open transaction (see `upgrade`)."""
    if connection.dialect.name == "postgresql":
        # One upgrade at a time (the others wait, then find the schema at head), and no
        # statement timeout: a migration may rewrite a large table.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
    config = _config(connection)
    if _made_before_alembic(connection):
        command.stamp(config, PRE_ALEMBIC_REVISION)
    command.upgrade(config, "head")
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise ConfigError(
                f"the migration left {len(broken)} row(s) pointing at missing rows "
                f"(first: table {broken[0][0]}); nothing was changed"
            )


def _use_wal(engine: Engine, attempts: int = 50) -> None:
    """Put a SQLite file in WAL mode: readers go on while one process writes.

    It is a property of the file, so only the first `robot init` changes it. Switching needs
    the file to itself, and SQLite answers "locked" at once (no busy wait) while another
    process migrates: skip the switch when the file is already in WAL, and retry otherwise.
    """
    for attempt in range(attempts):
        try:
            with engine.connect() as connection:
                mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
                if str(mode).lower() != "wal":
                    connection.exec_driver_sql("PRAGMA journal_mode = WAL")
                return
        except sqlalchemy.exc.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


def _made_before_alembic(connection: Connection) -> bool:
    inspector = sqlalchemy.inspect(connection)
    if inspector.has_table("alembic_version") or not inspector.has_table("users"):
        return False
    if connection.dialect.name == "sqlite":
        version = connection.exec_driver_sql("PRAGMA user_version").scalar()
        if version == PRE_ALEMBIC_USER_VERSION:
            return True
    raise ConfigError(
        "the platform DB has tables but no schema version robot knows; "
        "point ROBOT_DB_URL or ROBOT_DB_PATH at robot's own database"
    )


def describe(url: str | URL) -> str:
    """`url` as it may be shown to an operator: the password hidden."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database)
    return parsed.render_as_string(hide_password=True)


class PreparedRead:
    """A SELECT compiled once for an engine's dialect and run on a pooled DB-API connection.

    For the reads every request makes (its wiki, the caller's role, their token). SQLAlchemy's
    Connection and Result layers cost several times the query itself on SQLite (measured here:
    about 100 µs against 10 µs per read), so these reads use only its SQL compiler and pool.
    Rows come back as plain dicts keyed by the statement's column keys, values as the driver
    returns them (SQLite gives booleans as 0/1).
    """

    def __init__(self, engine: Engine, statement: sqlalchemy.Select):
        compiled = statement.compile(dialect=engine.dialect)
        self.engine = engine
        self.sql = str(compiled)
        self.columns = tuple(column.key for column in statement.selected_columns)
        # qmark (SQLite) binds by position; psycopg's pyformat binds by name.
        self.positions = compiled.positiontup if compiled.positional else None
        self._autocommit = engine.dialect.name == "postgresql"

    def one(self, **params) -> dict | None:
        """The first row for `params` (bind name -> value), or None.

        Raises the driver's errors wrapped as SQLAlchemy's (OperationalError ...), with
        `connection_invalidated` set when the server had dropped the connection.
        """
        args = tuple(params[name] for name in self.positions) if self.positions else params
        driver_error = self.engine.dialect.loaded_dbapi.Error
        try:
            connection = self.engine.raw_connection()
        except driver_error as error:  # the pool hands connect errors over unwrapped
            raise self._wrapped(error, args) from error
        try:
            row = self._fetch(connection.dbapi_connection, args)
        except driver_error as error:
            dropped = self.engine.dialect.is_disconnect(error, connection.dbapi_connection, None)
            if dropped:
                # The server dropped us (restart, failover): so it did every pooled connection.
                connection.invalidate(error)
                self.engine.dispose()
            raise self._wrapped(error, args, dropped) from error
        finally:
            connection.close()
        return None if row is None else dict(zip(self.columns, row, strict=True))

    def _wrapped(self, error: Exception, args, dropped=False) -> sqlalchemy.exc.DBAPIError:
        """The driver's error as SQLAlchemy's (OperationalError ...), as Connection raises it."""
        return sqlalchemy.exc.DBAPIError.instance(
            self.sql,
            args,
            error,
            self.engine.dialect.loaded_dbapi.Error,
            connection_invalidated=dropped,
        )

    def _fetch(self, dbapi, args) -> tuple | None:
        if self._autocommit:
            # One round trip: no BEGIN before, no ROLLBACK when the pool takes it back.
            dbapi.autocommit = True
        try:
            cursor = dbapi.cursor()
            try:
                cursor.execute(self.sql, args)
                return cursor.fetchone()
            finally:
                cursor.close()
        finally:
            if self._autocommit and not dbapi.closed:
                dbapi.autocommit = False


def read_again_if_dropped(read: Callable[[], T]) -> T:
    """Run an idempotent read; if the server had dropped its pooled connection, run it once more.

    After a PostgreSQL restart every pooled connection is dead, and SQLAlchemy (or PreparedRead)
    has discarded the pool when the first one failed; the second try connects afresh. Any other
    error, and a second failure, propagate.
    """
    try:
        return read()
    except sqlalchemy.exc.DBAPIError as error:
        if not error.connection_invalidated:
            raise
    return read()
