"""Debian's Caddy in front of a real stack, run with the Caddyfile the Ansible role writes.

It routes by host and path to the four services, issues a certificate only for a wiki that
exists (on-demand TLS asks check-slug), and takes the slow side of every transfer: clients that
trickle headers or bodies, or read answers slowly, meet Caddy, not the few sync workers, so
nobody is cut and every wiki keeps answering.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import random
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import httpx2
import pytest
from mcp import Client as SdkClient
from mcp.client.streamable_http import streamable_http_client

from app.core.settings import gunicorn_workers
from app.core.store import Store
from app.core.wikis import create_wiki
from app.web.bodies import SLOW_AFTER
from app.wiki.sends import SLOW_SEND
from tests.conftest import Stack
from tests.conftest import _term_when_parent_dies
from tests.conftest import free_ports
from tests.ops.deployment import REPO
from tests.ops.deployment import Deployment
from tests.ops.deployment import recap

pytestmark = pytest.mark.stack

DOMAIN = "robot.test"
OWNER = ("did:plc:frontowner", "front-owner.test")
PRIVATE, PUBLIC = "front-private", "front-public"
LARGE = 8 * 1024 * 1024
CADDY_START_TIMEOUT = 30


class Front:
    """Caddy on free ports in front of `stack`, with the role's Caddyfile, and clients for it."""

    def __init__(self, root: Path, stack: Stack):
        self.root = root
        self.stack = stack
        self.http_port, self.https_port = free_ports(2)
        self.caddyfile = self._render()
        self.process: subprocess.Popen | None = None
        self.context: ssl.SSLContext | None = None

    def _render(self) -> Path:
        """Run the role's validation and Caddyfile tasks alone, into a prefix of our own."""
        deployment = Deployment(self.root / "role")
        (deployment.prefix / "etc" / "robot").mkdir(parents=True)
        result = deployment.playbook(
            "--tags",
            "robot_validate,robot_caddy",
            robot_source_dir=str(REPO),
            robot_domain=DOMAIN,
            robot_wiki_port=str(self.stack.port("otterwiki")),
            robot_mcp_port=str(self.stack.port("mcp")),
            robot_api_port=str(self.stack.port("api")),
            robot_auth_port=str(self.stack.port("auth")),
            robot_caddy_local_certs="true",
            robot_caddy_admin="off",
            robot_caddy_http_port=str(self.http_port),
            robot_caddy_https_port=str(self.https_port),
        )
        assert recap(result.stdout)["failed"] == 0, result.stdout[-4000:] + result.stderr
        return deployment.path("/etc/robot/Caddyfile")

    def start(self) -> Front:
        data = self.root / "caddy-data"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "XDG_DATA_HOME": str(data),
            "XDG_CONFIG_HOME": str(self.root / "caddy-config"),
        }
        self.log = (self.root / "caddy.log").open("wb")
        self.process = subprocess.Popen(
            ["caddy", "run", "--adapter", "caddyfile", "--config", str(self.caddyfile)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_term_when_parent_dies,
        )
        self.root_ca = data / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        deadline = time.monotonic() + CADDY_START_TIMEOUT
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"caddy did not start:\n{self.logs()}", pytrace=False)
            if self.root_ca.exists():
                self.context = ssl.create_default_context(cafile=str(self.root_ca))
                try:
                    with self.client(DOMAIN) as client:
                        if client.get("/healthz").status_code == 200:
                            return self
                except (httpx2.HTTPError, ssl.SSLError):
                    pass
            time.sleep(0.25)

    def logs(self) -> str:
        return (self.root / "caddy.log").read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def client(self, host: str, **headers: str) -> httpx2.Client:
        """An HTTPS client that reaches `host` ({slug}.robot.test or the apex) through Caddy."""
        return httpx2.Client(
            base_url=f"https://127.0.0.1:{self.https_port}",
            headers={"Host": host, **headers},
            transport=_NamedHost(host, verify=self.context),
            timeout=60,
        )

    def connect(self, host: str, receive_buffer: int | None = None) -> ssl.SSLSocket:
        """A TLS connection to Caddy for `host`, certificate checked against Caddy's own CA."""
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        raw.settimeout(60)
        raw.connect(("127.0.0.1", self.https_port))
        return self.context.wrap_socket(raw, server_hostname=host)


class _NamedHost(httpx2.HTTPTransport):
    """Dial 127.0.0.1, but name `host` in TLS (SNI), as a client resolving it would."""

    def __init__(self, host: str, **options):
        super().__init__(**options)
        self._host = host

    def handle_request(self, request):
        request.extensions = {**request.extensions, "sni_hostname": self._host}
        return super().handle_request(request)


class _AsyncNamedHost(httpx2.AsyncHTTPTransport):
    def __init__(self, host: str, **options):
        super().__init__(**options)
        self._host = host

    async def handle_async_request(self, request):
        request.extensions = {**request.extensions, "sni_hostname": self._host}
        return await super().handle_async_request(request)


def host(slug: str) -> str:
    return f"{slug}.{DOMAIN}"


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    root = tmp_path_factory.mktemp("caddy")
    stack = Stack(root / "stack", PLATFORM_DOMAIN=DOMAIN, ROBOT_PUBLIC_SCHEME="https")
    front = None
    try:
        stack.start()
        store = Store(stack.settings.database_url)
        store.upsert_user(*OWNER)
        create_wiki(stack.settings, store, PRIVATE, OWNER[0])
        create_wiki(stack.settings, store, PUBLIC, OWNER[0], public=True)
        stack.tokens = {
            slug: store.create_token(slug, OWNER[0], "editor")[1] for slug in (PRIVATE, PUBLIC)
        }
        store.close()
        front = Front(root, stack).start()
        yield front
    finally:
        if front is not None:
            front.stop()
        stack.stop()


def bearer(front: Front, slug: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {front.stack.tokens[slug]}"}


def test_the_role_writes_a_formatted_caddyfile(front, tmp_path):
    text = front.caddyfile.read_text()
    formatted = subprocess.run(
        ["caddy", "fmt", str(front.caddyfile)], capture_output=True, text=True, check=True
    ).stdout
    assert formatted.strip() == text.strip()
    # Caddy 2.6.4 renamed the buffering directives; the role writes either spelling.
    assert "buffer_requests" in text and "request_buffers" not in text


ROUTES = [
    # (host, method, path, status, what only that service answers)
    (
        DOMAIN,
        "GET",
        "/.well-known/oauth-authorization-server",
        200,
        '"issuer":"https://robot.test"',
    ),
    (DOMAIN, "GET", "/.well-known/jwks.json", 200, '"keys"'),
    (DOMAIN, "GET", f"/api/internal/check-slug?domain={PUBLIC}.{DOMAIN}", 200, ""),
    (DOMAIN, "GET", f"/api/internal/check-slug?domain=nosuch.{DOMAIN}", 404, ""),
    (
        host(PUBLIC),
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        200,
        f'"https://{PUBLIC}.{DOMAIN}/mcp"',
    ),
    (host(PUBLIC), "GET", "/.well-known/oauth-protected-resource", 200, '"resource"'),
    (host(PUBLIC), "GET", "/Home", 200, "<html"),
]


@pytest.mark.parametrize(("name", "method", "path", "status", "says"), ROUTES)
def test_each_route_reaches_its_service(front, name, method, path, status, says):
    with front.client(name) as client:
        answer = client.request(method, path)
    assert answer.status_code == status, answer.text[:500]
    assert says in answer.text.replace(" ", "")


@pytest.mark.parametrize(
    "header",
    [{"X-Forwarded-Ssl": "off"}, {"X-Forwarded-Protocol": "http"}],
    ids=["ssl", "protocol"],
)
@pytest.mark.parametrize(
    ("name", "path"),
    [(host(PUBLIC), "/Home"), (DOMAIN, "/"), (DOMAIN, "/auth/login")],
    ids=["wiki", "api", "auth"],
)
def test_a_clients_own_scheme_headers_never_reach_gunicorn(front, header, name, path):
    """A client's `X-Forwarded-Ssl: off` reached gunicorn beside Caddy's X-Forwarded-Proto, and
    gunicorn answered 400 for the contradiction (its secure_scheme_headers)."""
    with front.client(name) as client:
        answer = client.get(path, headers=header)
    assert answer.status_code < 400, answer.text[:300]


def test_mcp_asks_for_a_token_through_caddy(front):
    with front.client(host(PRIVATE)) as client:
        answer = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert answer.status_code == 401
    challenge = answer.headers["WWW-Authenticate"]
    assert f"https://{PRIVATE}.{DOMAIN}/.well-known/oauth-protected-resource" in challenge


def test_a_wiki_page_named_like_an_mcp_path_stays_the_wikis(front):
    """Caddy's path matcher ignores case: "/Token" would have gone to the MCP service. And a
    page named "token", "mcp" or "authorize", and wiki links to it, took the exact paths that
    MCP clients call on a wiki's origin (eleventh review): only what an MCP client sends there
    goes to the MCP service now."""
    names = ("Token", "Register", "Mcp", "token", "register", "revoke", "mcp", "authorize")
    with front.client(host(PUBLIC), **bearer(front, PUBLIC)) as client:
        for page in names:
            text = f"# {page}\n\nthe {page} page of this wiki\n"
            assert client.put(f"/api/v1/pages/{page}", json={"content": text}).status_code in (
                200,
                201,
            )
            for path in (f"/{page}", f"/{page}/"):
                view = client.get(path, follow_redirects=True)
                assert view.status_code == 200 and f"the {page.lower()} page" in view.text.lower()


MCP_CALLS = [
    # (method, path, headers) as MCP clients send them on a wiki's origin
    ("POST", "/token", {}),
    ("POST", "/register", {}),
    ("POST", "/revoke", {}),
    ("OPTIONS", "/token", {"Origin": "https://claude.ai", "Access-Control-Request-Method": "POST"}),
    ("POST", "/mcp", {}),
    ("GET", "/mcp", {"Accept": "text/event-stream"}),
    ("DELETE", "/mcp", {}),
    ("GET", "/authorize?response_type=code&client_id=x", {}),
]


@pytest.mark.parametrize(("method", "path", "headers"), MCP_CALLS)
def test_what_mcp_clients_send_to_a_wikis_origin_reaches_the_mcp_service(
    front, method, path, headers
):
    with front.client(host(PUBLIC)) as client:
        answer = client.request(method, path, headers=headers)
    assert answer.status_code < 500, answer.text[:500]
    assert "uvicorn" in answer.headers.get_list("server")  # the MCP service's server


def test_certificates_only_for_wikis_that_exist(front):
    with front.connect(host(PUBLIC)) as tls:
        names = [value for kind, value in tls.getpeercert()["subjectAltName"] if kind == "DNS"]
    assert names == [host(PUBLIC)]
    for name in (f"nosuch.{DOMAIN}", f"www.{DOMAIN}", f"mta-sts.{DOMAIN}"):
        with pytest.raises(ssl.SSLError):
            front.connect(name).close()


def test_a_real_mcp_client_through_caddy(front):
    """The official SDK's client: streamed answers (text/event-stream) pass unbuffered."""

    async def session():
        headers = {"Host": host(PRIVATE), **bearer(front, PRIVATE)}
        transport = _AsyncNamedHost(host(PRIVATE), verify=front.context)
        async with httpx2.AsyncClient(headers=headers, transport=transport, timeout=60) as http:
            url = f"https://127.0.0.1:{front.https_port}/mcp"
            async with SdkClient(streamable_http_client(url, http_client=http)) as client:
                await client.call_tool("write_page", {"path": "Via", "content": "# Via\n\ncaddy\n"})
                read = await client.call_tool("read_page", {"path": "Via"})
                return "\n".join(block.text for block in read.content if block.type == "text")

    assert "caddy" in asyncio.run(session())


def git(*args: str, cwd: Path | None = None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )


def test_git_clone_and_push_through_caddy(front, tmp_path):
    """git (libcurl) over TLS: a chunked upload-pack request and a push body pass the buffers."""
    with front.client(host(PRIVATE), **bearer(front, PRIVATE)) as client:
        assert client.put("/api/v1/pages/Cloned", json={"content": "# Cloned\n"}).status_code == 201
    store = Store(front.stack.settings.database_url)
    try:
        store.update_wiki(PRIVATE, git_access=True)
    finally:
        store.close()
    origin = f"{host(PRIVATE)}:{front.https_port}"
    url = f"https://user:{front.stack.tokens[PRIVATE]}@{origin}/.git"
    options = [
        "-c",
        f"http.curloptResolve={origin}:127.0.0.1",
        "-c",
        f"http.sslCAInfo={front.root_ca}",
    ]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_TERMINAL_PROMPT": "0"}
    cloned = git(*options, "clone", url, str(tmp_path / "work"), env=env)
    assert cloned.returncode == 0, cloned.stderr
    work = tmp_path / "work"
    assert (work / "cloned.md").exists()
    (work / "pushed.md").write_text("# Pushed\n\n" + "through caddy\n" * 20000)
    git("add", "pushed.md", cwd=work, env=env)
    who = ["-c", "user.name=Front Owner", "-c", f"user.email={OWNER[1]}"]
    git(*who, "commit", "-m", "push through caddy", cwd=work, env=env)
    pushed = git(*options, "push", "origin", "HEAD", cwd=work, env=env)
    assert pushed.returncode == 0, pushed.stderr
    with front.client(host(PRIVATE), **bearer(front, PRIVATE)) as client:
        assert "through caddy" in client.get("/api/v1/pages/Pushed").json()["content"]


def test_slow_headers_hold_no_worker(front):
    """Twice as many clients as workers send a request's headers a little at a time: Caddy
    reads headers itself, so every wiki keeps answering, straight from gunicorn too."""
    trickles = []
    try:
        for _ in range(2 * gunicorn_workers()):
            tls = front.connect(host(PUBLIC))
            tls.sendall(f"GET /Home HTTP/1.1\r\nHost: {host(PUBLIC)}\r\nX-Slow: ".encode())
            trickles.append(tls)
        for _ in range(3):
            time.sleep(1)
            for tls in trickles:
                tls.sendall(b"a")
            with front.client(host(PRIVATE), **bearer(front, PRIVATE)) as client:
                assert client.get("/api/v1/pages/Home").status_code == 200
        with front.stack.client("otterwiki", host=host(PUBLIC)) as direct:
            assert direct.get("/Home").status_code == 200
    finally:
        for tls in trickles:
            tls.close()


def slow_upload(front: Front, name: str, size: int, seconds: float) -> tuple[int, str]:
    """PUT a `size`-byte attachment through Caddy, spread over `seconds`; (status, body)."""
    tls = front.connect(host(PRIVATE))
    token = front.stack.tokens[PRIVATE]
    tls.sendall(
        f"PUT /api/v1/pages/Home/attachments/{name} HTTP/1.1\r\nHost: {host(PRIVATE)}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode()
    )
    steps = 10
    for step in range(steps):
        tls.sendall(b"x" * (size // steps + (size % steps if step == steps - 1 else 0)))
        time.sleep(seconds / steps)
    answer = http.client.HTTPResponse(tls, method="PUT")
    answer.begin()
    try:
        return answer.status, answer.read().decode()
    finally:
        tls.close()


def test_slow_uploads_are_taken_whole(front):
    """More slow writers than workers, one account: straight to gunicorn a pool's second slow
    body is refused (503); through Caddy each arrives whole and is stored.

    Caddy hands the buffered bodies on together, and one member's writes past a turn and a
    waiting place are refused (429, or 503 past the owner's one wait for a write lock) rather
    than wait for the wiki's write lock in a worker each: a writer sends again after a second
    and up to one more at random."""
    count = gunicorn_workers() + 1
    results: list[tuple[int, str]] = [(0, "")] * count

    def upload(n: int) -> None:
        for _ in range(5):
            results[n] = slow_upload(front, f"slow-{n}.bin", 200_000, SLOW_AFTER * 10 + 1)
            if results[n][0] not in (429, 503):
                return
            time.sleep(1 + random.random())

    writers = [threading.Thread(target=upload, args=(n,)) for n in range(count)]
    for writer in writers:
        writer.start()
    time.sleep(1)
    with front.client(host(PUBLIC)) as client:
        assert client.get("/Home").status_code == 200
    for writer in writers:
        writer.join(timeout=120)
    assert [status for status, _ in results] == [201] * count, results
    with front.client(host(PRIVATE), **bearer(front, PRIVATE)) as client:
        for n in range(count):
            stored = client.get(f"/api/v1/pages/Home/attachments/slow-{n}.bin")
            assert stored.content == b"x" * 200_000


def test_slow_downloads_are_read_whole(front):
    """More anonymous slow readers of a large attachment than workers: straight from gunicorn
    all but one are cut (one place per pool of callers); through Caddy every one gets it all,
    and pages answer meanwhile."""
    body = os.urandom(LARGE)
    with front.client(host(PUBLIC), **bearer(front, PUBLIC)) as client:
        stored = client.put("/api/v1/pages/Home/attachments/large.bin", content=body)
        assert stored.status_code in (200, 201), stored.text
    readers = []
    try:
        for _ in range(gunicorn_workers() + 1):
            tls = front.connect(host(PUBLIC), receive_buffer=4096)
            tls.sendall(
                f"GET /Home/a/large.bin HTTP/1.1\r\nHost: {host(PUBLIC)}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            readers.append(tls)
        time.sleep(SLOW_SEND + 1)
        with front.client(host(PUBLIC)) as client:
            assert [client.get("/Home").status_code for _ in range(3)] == [200] * 3
        for tls in readers:
            answer = http.client.HTTPResponse(tls, method="GET")
            answer.begin()
            assert answer.status == 200
            assert answer.read() == body
    finally:
        for tls in readers:
            tls.close()
