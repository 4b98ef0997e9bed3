"""The throwaway PostgreSQL server: a real one, never root, and gone after the session, however
the session ends."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy
from sqlalchemy import text

from tests.conftest import descendants
from tests.conftest import pid_alive
from tests.postgres import PostgresCluster
from tests.postgres import PostgresError
from tests.postgres import find_bin_dir

REPO = Path(__file__).resolve().parent.parent
# A test session that starts a server, says where it is, and waits to be killed.
SESSION = (
    "import time\n"
    "from tests.postgres import PostgresCluster\n"
    "cluster = PostgresCluster().start()\n"
    "print(cluster.pid, cluster.root, flush=True)\n"
    "time.sleep(300)\n"
)


@pytest.fixture
def engine(postgres_url):
    engine = sqlalchemy.create_engine(postgres_url)
    yield engine
    engine.dispose()


def _gone(pids: set[int], root: Path, timeout: float = 30) -> bool:
    """Wait until none of `pids` runs and `root` is gone; False if not within `timeout` s."""
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids) or root.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_psycopg_reaches_the_newest_installed_server(postgres_cluster, postgres_url):
    dbname = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_cluster.conninfo(dbname)) as conn:
        row = conn.execute("SELECT current_database(), current_user").fetchone()
        major = conn.info.server_version // 10000
    assert row == (dbname, "robot")
    assert major == int(find_bin_dir().parent.name)


def test_sqlalchemy_creates_and_reads_a_table(engine):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)"))
        conn.execute(text("INSERT INTO notes (body) VALUES ('hello'), ('world')"))
    with engine.connect() as conn:
        bodies = conn.execute(text("SELECT body FROM notes ORDER BY id")).scalars().all()
    assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
    assert bodies == ["hello", "world"]


def test_databases_are_isolated(postgres_cluster, engine):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE only_here (id int)"))
    postgres_cluster.create_database("elsewhere")
    try:
        with psycopg.connect(postgres_cluster.conninfo("elsewhere")) as conn:
            found = conn.execute("SELECT to_regclass('only_here')").fetchone()
    finally:
        postgres_cluster.drop_database("elsewhere")
    assert found == (None,)


def test_drop_ends_sessions_left_open(postgres_cluster):
    postgres_cluster.create_database("left open")
    with psycopg.connect(postgres_cluster.conninfo("left open")) as conn:
        postgres_cluster.drop_database("left open")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with psycopg.connect(postgres_cluster.conninfo()) as conn:
        names = conn.execute("SELECT datname FROM pg_database").fetchall()
    assert ("left open",) not in names


def test_server_does_not_run_as_root(postgres_cluster):
    status = Path(f"/proc/{postgres_cluster.pid}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert len(uids) == 4
    assert "0" not in uids


def test_stop_leaves_nothing_behind():
    cluster = PostgresCluster().start()
    tree = descendants(cluster.pid) | {cluster.pid}
    cluster.stop()
    assert _gone(tree, cluster.root, timeout=0)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.conninfo(), connect_timeout=2)


def test_killed_session_leaves_nothing_behind():
    with subprocess.Popen(
        [sys.executable, "-c", SESSION], cwd=REPO, stdout=subprocess.PIPE, text=True
    ) as session:
        try:
            pid, root = session.stdout.readline().split()
            tree = descendants(session.pid)
        finally:
            session.kill()
    assert int(pid) in tree
    assert _gone(tree, Path(root))


def test_failed_start_raises_with_the_log():
    # Bound, not listening: postgres cannot bind it, and nothing answers a connection there.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        cluster = PostgresCluster(port=taken.getsockname()[1])
        with pytest.raises(PostgresError, match="could not bind IPv4 address"):
            cluster.start()
    assert not cluster.root.exists()
