"""A real, throwaway PostgreSQL server for tests: Debian's binaries, a temp dir, a free port.

Tests reach it through the `postgres_cluster` and `postgres_url` fixtures in conftest.py.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.conftest import _term_when_parent_dies
from tests.conftest import free_ports

# Debian installs each major version side by side as /usr/lib/postgresql/<major>/bin.
BIN_GLOB = "/usr/lib/postgresql/*/bin"
# The superuser initdb creates; trust auth on loopback only, so it needs no password.
USER = "robot"
HOST = "127.0.0.1"
# Seconds. initdb plus the first start take about 1 s; a busy shared machine can be far slower.
START_TIMEOUT = 60
STOP_TIMEOUT = 60
# Characters of the server log quoted in an error.
LOG_TAIL = 4000
# Durability is pointless for a cluster that is deleted at the end, and costs most of the time.
SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
# Runs as the server's owner in its own session, so Ctrl-C or a killed pytest cannot stop it
# early: it blocks until its stdin closes, which happens in stop() or when pytest dies (the
# kernel closes the pipe), then stops the server and deletes the temp dir. $1 pg_ctl, $2 the
# data dir, $3 the temp dir.
_WATCHDOG = 'read -r _; "$1" stop -D "$2" -m fast -w -t 60; rm -rf "$3"'


class PostgresError(RuntimeError):
    """The PostgreSQL server could not be found, set up or started."""


def find_bin_dir() -> Path:
    """Return the bin dir of the newest installed PostgreSQL, e.g. /usr/lib/postgresql/15/bin.

    Raises PostgresError when none has initdb, pg_ctl and postgres.
    """
    found = [
        path
        for path in map(Path, glob.glob(BIN_GLOB))
        if all((path / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres"))
    ]
    if not found:
        raise PostgresError(
            f"no PostgreSQL server in {BIN_GLOB}: install Debian's postgresql package "
            "(make system-packages)"
        )
    return max(found, key=_major_version)


def _major_version(bin_dir: Path) -> tuple[int, ...]:
    """/usr/lib/postgresql/9.6/bin -> (9, 6): numeric, so 15 sorts after 9.6."""
    return tuple(int(part) for part in bin_dir.parent.name.split(".") if part.isdigit())


def _server_owner() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when we are root (postgres refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresError("running as root and found neither a postgres nor a nobody account")


class PostgresCluster:
    """One PostgreSQL server in its own temp dir, listening on 127.0.0.1:`port` only.

    `with PostgresCluster() as cluster:` (or `start()` and `stop()`) initialises a cluster with
    a trusted superuser `robot`, starts the server and waits until it accepts connections; on
    exit the server is stopped (`pg_ctl stop -m fast`) and the temp dir deleted. A watchdog
    does the same if the process that started it dies, and the server gets SIGTERM then too
    (PR_SET_PDEATHSIG), so a killed test session leaves neither a server nor its files behind.
    As root, the server runs as the `postgres` account (or `nobody`).
    """

    def __init__(self, port: int | None = None, bin_dir: Path | None = None):
        """`port`: the TCP port to listen on (default: one free now); `bin_dir`: find_bin_dir()."""
        self.bin_dir = bin_dir or find_bin_dir()
        self.port = port or free_ports(1)[0]
        self.root: Path | None = None
        self._postmaster: subprocess.Popen | None = None
        self._watchdog: subprocess.Popen | None = None
        self._as_owner: dict = {}

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (PGDATA), inside the temp dir `root`."""
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        """initdb's output, then the server's log."""
        return self.root / "server.log"

    @property
    def pid(self) -> int:
        """The postmaster's pid (the server's main process); only while started."""
        return self._postmaster.pid

    def url(self, dbname: str) -> str:
        """The SQLAlchemy URL of database `dbname`: postgresql+psycopg://robot@127.0.0.1:PORT/NAME."""
        return f"postgresql+psycopg://{USER}@{HOST}:{self.port}/{quote(dbname, safe='')}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """The libpq connection string of database `dbname`, for psycopg.connect()."""
        return make_conninfo(host=HOST, port=self.port, user=USER, dbname=dbname)

    def create_database(self, name: str) -> None:
        """Create an empty database `name` (any string up to 63 bytes; quoted as an identifier)."""
        self._execute("CREATE DATABASE {}", name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists, ending any sessions still connected to it."""
        # FORCE (PostgreSQL 13+) ends the sessions a test left open instead of failing on them.
        self._execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)

    def _execute(self, template: str, name: str) -> None:
        """Run `template` on the maintenance database with `name` quoted into its `{}`."""
        # CREATE/DROP DATABASE refuse to run inside a transaction block.
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL(template).format(sql.Identifier(name)))

    def start(self) -> PostgresCluster:
        """Set up and start the server; return self. Raises PostgresError with the log's tail."""
        # Not under pytest's temp dirs: those are private to root, and the server's owner has to
        # reach its files. /tmp also keeps the unix socket path under its 107-byte limit.
        self.root = Path(tempfile.mkdtemp(prefix="robot-pg-", dir="/tmp"))
        owner = _server_owner()
        if owner is not None:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_owner = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        self._watchdog = subprocess.Popen(
            ["sh", "-c", _WATCHDOG, "watchdog", self._tool("pg_ctl"), self.data_dir, self.root],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            **self._child_options(),
        )
        try:
            initdb = self._initdb()
            if initdb != 0:
                self._fail(f"initdb exited with status {initdb}")
            self._launch()
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _child_options(self) -> dict:
        """Popen options shared by every process we start for the server."""
        # A developer's PG* variables (PGDATA, PGPORT, ...) must not steer pg_ctl or initdb.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        # The inherited working dir may be one the server's owner cannot enter.
        return {"cwd": self.root, "env": env, **self._as_owner}

    def _initdb(self) -> int:
        """Run initdb into data_dir, its output into the log; return its exit status."""
        command = [
            self._tool("initdb"),
            f"--pgdata={self.data_dir}",
            "--auth=trust",
            f"--username={USER}",
            "--no-locale",
            "--encoding=UTF8",
            "--no-sync",
            "--no-instructions",
        ]
        return self._logged(subprocess.run, command, timeout=START_TIMEOUT).returncode

    def _launch(self) -> None:
        # postgres runs as our own child rather than daemonised by `pg_ctl start`: only a direct
        # child can get SIGTERM when we die (PR_SET_PDEATHSIG does not pass to grandchildren).
        command = [self._tool("postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        command += ["-c", f"unix_socket_directories={self.root}"]
        for name, value in SERVER_SETTINGS.items():
            command += ["-c", f"{name}={value}"]
        # Ctrl-C on the test run must not stop the server before the teardown needs it.
        self._postmaster = self._logged(subprocess.Popen, command, start_new_session=True)

    def _logged(self, spawn, command: list[str], **options):
        """spawn(command) (subprocess.run or Popen) as the owner, its output into the log."""
        with open(self.log_path, "ab") as log:
            return spawn(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_term_when_parent_dies,
                **self._child_options(),
                **options,
            )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            status = self._postmaster.poll()
            if status is not None:
                self._fail(f"postgres exited with status {status}")
            try:
                with psycopg.connect(self.conninfo(), connect_timeout=2):
                    return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    self._fail(f"no connection after {START_TIMEOUT} s: {error}")
            time.sleep(0.05)

    def _fail(self, reason: str) -> None:
        tail = self.log_path.read_text(errors="replace")[-LOG_TAIL:]
        # The log goes with the temp dir, so its end travels in the message.
        raise PostgresError(f"PostgreSQL: {reason}; the end of its log:\n{tail}")

    def stop(self) -> None:
        """Stop the server (pg_ctl stop -m fast) and delete its temp dir; safe to call twice."""
        if self._watchdog is not None:
            # The watchdog's own path, the one a killed session relies on, so every run tests it.
            self._watchdog.stdin.close()
            _wait_or_kill(self._watchdog)
            self._watchdog = None
        if self._postmaster is not None:
            _wait_or_kill(self._postmaster)
            self._postmaster = None
        if self.root is not None:
            # Only does anything when the watchdog could not.
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _wait_or_kill(process: subprocess.Popen) -> None:
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
