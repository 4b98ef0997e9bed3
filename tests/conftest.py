"""Shared fixtures. Each block below belongs to one area; add new fixtures as a new block."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx2
import pytest

from app.core.atproto_identity import Network
from app.core.atproto_identity import dns_txt_lookup
from app.core.outbound import Fetcher
from app.core.platform import Platform
from app.core.platform import init_instance
from app.core.settings import Settings
from app.core.wikis import create_wiki
from tests.auth.fake_atproto import FakeNetwork
from tests.auth.fake_servers import FakeDns

ALICE = ("did:plc:alice", "alice.test")
BOB = ("did:plc:bob", "bob.test")


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch):
    """Tests never see the developer's ROBOT_* or platform variables."""
    for name in list(os.environ):
        if name.startswith(("ROBOT_", "ATPROTO_")) or name in (
            "MULTI_TENANT",
            "PLATFORM_DOMAIN",
            "WIKI_BASE",
            "SIGNING_KEY_PATH",
            "GUNICORN_BIND",
        ):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _own_detached_slots(monkeypatch):
    """Each Platform.load points this process's detached steps at its instance's slots
    (app.core.detached.use_slots_in); a test gets back what it started with, so a later one
    never counts against a finished instance's slots (CI: a commit-graph step was not started,
    both slots of an earlier test's instance still held)."""
    from app.core import detached

    monkeypatch.setattr(detached, "_slots_folder", detached._slots_folder)


# The platform DB engines the store runs on. A module marked `both_engines` runs each of its
# tests that use `settings` once per engine (`sqlite_only` keeps a test to SQLite); the rest
# run on SQLite, the embedded default.
ENGINES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    definition = metafunc.definition
    if (
        "database_url" in metafunc.fixturenames
        and definition.get_closest_marker("both_engines")
        and not definition.get_closest_marker("sqlite_only")
    ):
        metafunc.parametrize("database_url", ENGINES, indirect=True)


@pytest.fixture
def database_url(request) -> str:
    """ROBOT_DB_URL for `settings`: "" (SQLite in the data dir) or a fresh PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return ""
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    env = {"ROBOT_DATA_DIR": str(tmp_path / "data")}
    if database_url:
        env["ROBOT_DB_URL"] = database_url
    return Settings.from_env(env)


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


@pytest.fixture
def wikis(platform, users):
    """Wiki alpha owned by Alice and beta owned by Bob; returns the platform."""
    alice, bob = users
    create_wiki(platform.settings, platform.store, "alpha", alice)
    create_wiki(platform.settings, platform.store, "beta", bob)
    return platform


def oauth_grant(store, did: str, slug: str, client_id: str = "client") -> str:
    """A redeemed OAuth grant of `did` to `client_id` in wiki `slug`; returns its id, the
    `grant` claim an access token needs (Store.oauth_grant_live)."""
    if store.find_oauth_client(client_id) is None:
        store.save_oauth_client(client_id, {"client_name": client_id})
    code = uuid.uuid4().hex
    store.save_authorization_code(code, client_id, did, slug, {}, 60)
    return store.redeem_authorization_code(code, client_id, 3600).code_hash


# -- ATProto: the fake network (tests/auth/fake_atproto.py) and a Network that reaches it ------


@pytest.fixture
def fake_net(tmp_path):
    """The fake ATProto network, served on 127.0.0.1 (HTTP and TLS) for this test."""
    with FakeNetwork(tmp_path / "fake-atproto") as net:
        yield net


@pytest.fixture
def network(fake_net) -> Network:
    """What sign-in and adding members use to reach the fake network: real HTTP(S) and DNS
    over loopback."""
    fetcher = Fetcher(allow_loopback=True, resolve=fake_net.resolve, verify=fake_net.client_ssl)
    with FakeDns(fake_net.txt) as dns:
        yield Network(fetcher, dns_txt_lookup(["127.0.0.1"], dns.port), fake_net.origin)


# -- stack: the real supervisord with the four programs (processes helper) ----------------------

_REPO = Path(__file__).resolve().parent.parent
ROBOT_BIN = _REPO / ".venv" / "bin" / "robot"
STACK_PROGRAMS = ("otterwiki", "mcp", "api", "auth")
_PORT_VARS = {"otterwiki": "WIKI_PORT", "mcp": "MCP_PORT", "api": "API_PORT", "auth": "AUTH_PORT"}
# Generous: twelve gunicorn workers and uvicorn import Flask/Otterwiki on a shared 2-core machine.
STACK_START_TIMEOUT = 120
# A program that exits this often while the stack starts is broken: fail now, with its log.
STACK_CRASH_LIMIT = 3
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# sun_path holds 108 bytes: a deep temp dir would make supervisor's socket path unusable.
_MAX_SOCKET_PATH = 100
_PLATFORM_VARS = ("MULTI_TENANT", "PLATFORM_DOMAIN", "WIKI_BASE", "SIGNING_KEY_PATH")


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free right now (all held open together, so all distinct)."""
    held = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def forked_copies(parent: int | None = None) -> list[int]:
    """Children of `parent` (default: this process) that are copies of it (a fork that never
    ran another program has its command line) or zombies: what a confined step
    (app.core.confined) or a killed git process could leave for it to reap. Its children only:
    a test process's checks must not see the zombies of a stack it started (each stack's own
    checks look at its workers)."""
    parent = parent or os.getpid()
    command = Path(f"/proc/{parent}/cmdline").read_bytes()
    found = []
    for pid in children_of(parent):
        try:
            copy = Path(f"/proc/{pid}/cmdline").read_bytes() == command
        except OSError:
            continue
        if copy or not pid_alive(pid):
            found.append(pid)
    return found


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (read from /proc, any of its threads)."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            found += [
                int(child)
                for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            ]
    except OSError:
        pass  # it ended, or a thread ended while read
    return found


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _term_when_parent_dies() -> None:
    """In the child: get SIGTERM if pytest dies, so a killed test run leaves no stack behind."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Stack:
    """One robot instance: `robot init` + `robot run` on free ports in its own data dir."""

    def __init__(self, root: Path, **extra_env: str):
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ROBOT_", "ATPROTO_", "PYTEST_"))
            and k not in _PLATFORM_VARS + ("GUNICORN_BIND",)
        }
        env.update(
            ROBOT_DATA_DIR=str(root / "data"),
            PLATFORM_DOMAIN="localhost",
            ROBOT_BIND_HOST="127.0.0.1",
        )
        env.update(zip(_PORT_VARS.values(), map(str, free_ports(4)), strict=True))
        env.update(extra_env)
        self._short_run_dir = None
        if len(str(Settings.from_env(env).run_dir / "supervisor.sock")) > _MAX_SOCKET_PATH:
            self._short_run_dir = tempfile.mkdtemp(prefix="robot-run-", dir="/tmp")
            env["ROBOT_RUN_DIR"] = self._short_run_dir
        self.env = env
        self.settings = Settings.from_env(env)
        self.output_path = root / "robot-run.out"
        self.process: subprocess.Popen | None = None
        self._output = None
        self._clients: list[httpx2.Client] = []

    def robot(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `.venv/bin/robot ARGS` against this instance (no check)."""
        return subprocess.run(
            [str(ROBOT_BIN), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def port(self, service: str) -> int:
        return int(self.env[_PORT_VARS[service]])

    def browser_session(self, did: str, host: str, ttl: int = 3600) -> str:
        """Start a server-side session for user `did` (who must exist) and return the cookie
        credential valid on `host` (e.g. alpha.localhost), as a sign-in and handoff would."""
        from app.core.store import Store

        store = Store(self.settings.database_url)
        try:
            return store.create_session(did, host, ttl)[1]
        finally:
            store.close()

    def client(self, service: str, host: str | None = None) -> httpx2.Client:
        """An HTTP client for one service; sends `Host: host` when given (e.g. alpha.localhost)."""
        client = httpx2.Client(
            base_url=f"http://127.0.0.1:{self.port(service)}",
            headers={"Host": host} if host else None,
            timeout=30,
        )
        self._clients.append(client)
        return client

    def get_as_told(self, service: str, host: str, path: str, tries: int = 10) -> list:
        """GET `path` as a polite client does: a 429 for crowding (app/wiki/turns.py) is tried
        again after its Retry-After (seconds), at most `tries` times in all. Returns every
        answer, the last one first to check."""
        answers = []
        with self.client(service, host=host) as client:
            for _ in range(tries):
                answer = client.get(path)
                answers.append(answer)
                if answer.status_code != 429:
                    break
                assert int(answer.headers["Retry-After"]) >= 1
                time.sleep(int(answer.headers["Retry-After"]))
        return answers

    def pid(self, program: str) -> int:
        """The pid supervisor reports for a program (0 when it is not running)."""
        result = self.robot("ctl", "pid", program)
        return int(result.stdout.strip() or 0)

    def start(self) -> Stack:
        init = self.robot("init")
        if init.returncode != 0:
            pytest.fail(f"robot init failed:\n{init.stdout}{init.stderr}", pytrace=False)
        self._output = open(self.output_path, "w")  # closed in stop()
        self.process = subprocess.Popen(
            [str(ROBOT_BIN), "run"],
            env=self.env,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_term_when_parent_dies,
        )
        self.wait_healthy(STACK_START_TIMEOUT, crash_limit=STACK_CRASH_LIMIT)
        return self

    def unhealthy(self) -> list[str]:
        """The programs whose /healthz does not answer 200 right now."""
        bad = []
        for program in STACK_PROGRAMS:
            url = f"http://127.0.0.1:{self.port(program)}/healthz"
            try:
                if httpx2.get(url, timeout=2).status_code != 200:
                    bad.append(program)
            except httpx2.HTTPError:
                bad.append(program)
        return bad

    def states(self) -> dict[str, str]:
        """Each program's supervisor state (RUNNING, STARTING, BACKOFF...)."""
        lines = self.robot("ctl", "status").stdout.splitlines()
        return {line.split()[0]: line.split()[1] for line in lines if len(line.split()) > 1}

    def crashed(self, limit: int) -> list[str]:
        """The programs that exited on their own at least `limit` times (supervisord's log)."""
        text = self.output_path.read_text(errors="replace") if self.output_path.exists() else ""
        return [p for p in STACK_PROGRAMS if text.count(f"exited: {p} (exit status") >= limit]

    def wait_healthy(self, timeout: float, crash_limit: int = 0) -> None:
        """Poll until every /healthz answers 200 and all are RUNNING; else fail with the logs.

        With `crash_limit`, fail as soon as a program has crashed that often (a broken app).
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                self.fail(f"robot run exited with status {self.process.returncode}")
            if crash_limit and (crashed := self.crashed(crash_limit)):
                self.fail(f"{', '.join(crashed)} exited {crash_limit} times while starting")
            bad = self.unhealthy()
            if not bad:
                states = self.states()
                bad = [p for p in STACK_PROGRAMS if states.get(p) != "RUNNING"]
            if not bad:
                return
            if time.monotonic() > deadline:
                self.fail(f"not healthy after {timeout} s: {', '.join(bad)}")
            time.sleep(0.25)

    def logs(self) -> str:
        """supervisord's output and the tail of every program's log file."""
        parts = []
        for path in [self.output_path] + [
            self.settings.log_dir / f"{p}.log" for p in STACK_PROGRAMS
        ]:
            text = path.read_text(errors="replace") if path.exists() else "(missing)"
            parts.append(f"===== {path} =====\n{text[-6000:]}")
        return "\n".join(parts)

    def fail(self, reason: str) -> None:
        logs = self.logs()
        self.stop()
        pytest.fail(f"robot stack: {reason}\n{logs}", pytrace=False)

    def stop(self) -> set[int]:
        """TERM supervisord, wait, then kill what is left; return the pids that had to be killed."""
        for client in self._clients:
            client.close()
        leftovers: set[int] = set()
        if self.process is not None and self.process.poll() is None:
            tree = descendants(self.process.pid)
            self.process.terminate()
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            leftovers = {pid for pid in tree if pid_alive(pid)}
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self._output is not None:
            self._output.close()
            self._output = None
        if self._short_run_dir:
            shutil.rmtree(self._short_run_dir, ignore_errors=True)
        return leftovers


@pytest.fixture(scope="session")
def _stacks(tmp_path_factory):
    """The session's real stacks, one per engine, each started on first use, all stopped last.

    Kept apart from `stack` so no stack is stopped and started again when the tests that use
    them come in an order that alternates engines (as pytest-xdist hands out whole files).
    """
    started: dict[str, Stack] = {}

    def get(engine: str, cluster=None) -> Stack:
        if engine not in started:
            extra_env = {}
            if cluster is not None:
                cluster.create_database("stack")
                extra_env["ROBOT_DB_URL"] = cluster.url("stack")
            instance = Stack(tmp_path_factory.mktemp(f"stack-{engine}"), **extra_env)
            started[engine] = instance  # stopped at the end even if it fails to start
            instance.start()
        return started[engine]

    yield get
    for instance in started.values():
        instance.stop()


@pytest.fixture(scope="module", params=ENGINES)
def stack(request, _stacks):
    """The shared real stack: supervisord with otterwiki, mcp, api and auth on free ports.

    Once with the platform DB on SQLite, once on the throwaway PostgreSQL: every test that uses
    the stack runs on both.
    """
    cluster = None
    if request.param == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
    return _stacks(request.param, cluster)


@pytest.fixture
def make_stack(tmp_path):
    """Start extra short-lived instances: make_stack(**env) -> a started Stack (stopped after)."""
    made: list[Stack] = []

    def make(**extra_env: str) -> Stack:
        instance = Stack(tmp_path / f"stack{len(made)}", **extra_env)
        made.append(instance)
        return instance.start()

    yield make
    for instance in made:
        instance.stop()


# -- browsers: headless chromium driven through tests/browser.py --------------------------------


@pytest.fixture
def browsers():
    """browsers() -> a new headless chromium; every one opened is closed after the test."""
    from tests.browser import Browser

    opened = []

    def open_one():
        opened.append(Browser())
        return opened[-1]

    yield open_one
    for browser in opened:
        browser.close()


def sign_in_at_apex(stack: Stack, browser, did: str):
    """Give `browser` an apex session of user `did`, as a sign-in would; returns the browser."""
    from app.web.session_cookie import PLAIN_NAME

    browser.get(f"http://localhost:{stack.port('api')}/healthz")
    browser.add_cookie(PLAIN_NAME, stack.browser_session(did, "localhost"))
    return browser


# -- postgres: a real, throwaway PostgreSQL server (tests/postgres.py) ---------------------------


@pytest.fixture(scope="session")
def postgres_cluster():
    """The session's PostgreSQL server, started on first use (~1 s) and stopped at the end."""
    # Imported here: tests.postgres imports this module's process helpers, and a session that
    # never asks for PostgreSQL does not import psycopg.
    from tests.postgres import PostgresCluster

    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster) -> str:
    """A new empty database for this test alone, dropped after it: its SQLAlchemy URL."""
    name = f"test_{uuid.uuid4().hex}"
    postgres_cluster.create_database(name)
    yield postgres_cluster.url(name)
    postgres_cluster.drop_database(name)
