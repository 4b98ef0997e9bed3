"""A git transfer, an export or a long page that outlasts the worker timeout lives while it moves,
and only then.

A stack of its own with a 3-second gunicorn worker timeout: a clone read slowly (but steadily)
takes several times that and must arrive whole, and so must a wiki's export (a zip) and a long
answer to a write read so; a client that stops reading must not hold the worker (the arbiter's
timeout still ends it).
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import time
import zipfile
from urllib.parse import urlencode

import pytest

from app.core.errors import Unavailable
from app.core.locks import wiki_write_lock
from tests.wiki.test_git_http import OWNER
from tests.wiki.test_git_http import GitWiki
from tests.wiki.test_git_http import commit_file
from tests.wiki.test_git_http import ok
from tests.wiki.test_git_http import run_git

pytestmark = pytest.mark.stack

# Seconds. The worker checks in every 2 s (KeepAlive.every) while the transfer moves: with 3 s,
# one check-in late by a second on a busy host got a steady clone killed (CI, 4 December).
TIMEOUT = 5
PACK_BYTES = 8 * 1024 * 1024  # random, so it packs to as much: more than the socket buffers


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A wiki holding one incompressible file of PACK_BYTES, on a stack with a short timeout."""
    from tests.conftest import Stack

    folder = tmp_path_factory.mktemp("keepalive")
    instance = Stack(folder / "stack", ROBOT_WORKER_TIMEOUT=str(TIMEOUT))
    instance.start()
    try:
        ok(instance.robot("user", "add", "--did", OWNER[0], "--handle", OWNER[1]))
        wiki = GitWiki(instance, "big")
        work = folder / "work"
        ok(wiki.clone(work, wiki.editor))
        commit_file(work, "home/blob.bin", os.urandom(PACK_BYTES), "a big attachment")
        ok(run_git("push", "-q", "origin", "HEAD:main", cwd=work))
        yield wiki
    finally:
        instance.stop()


def _fetch(wiki: GitWiki, pause: float = 0, stall: float = 0) -> bytes:
    """POST an upload-pack request for HEAD and read the answer as _read does."""
    want = f"want {wiki.head()}\n"
    body = f"{len(want) + 4:04x}{want}0000" + "0009done\n"
    request = (
        "POST /.git/git-upload-pack HTTP/1.1\r\n"
        f"Host: {wiki.slug}.localhost\r\n"
        f"Authorization: Bearer {wiki.editor}\r\n"
        "Content-Type: application/x-git-upload-pack-request\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    )
    return _read(wiki, request, pause, stall)


def _export(wiki: GitWiki, pause: float = 0, stall: float = 0) -> bytes:
    """GET the wiki's export as a zip and read the answer as _read does."""
    request = (
        "GET /api/v1/export?format=zip HTTP/1.1\r\n"
        f"Host: {wiki.slug}.localhost\r\n"
        f"Authorization: Bearer {wiki.editor}\r\nConnection: close\r\n\r\n"
    )
    return _read(wiki, request, pause, stall)


def _read(
    wiki: GitWiki,
    request: str,
    pause: float,
    stall: float,
    first=None,
    window: int = 64 * 1024,
    rate: float | None = None,
) -> bytes:
    """Send `request` and read the answer in steps of at most 64 KiB through a receive buffer
    of `window` bytes, sleeping `pause` seconds between them (or, at `rate` bytes a second,
    as long as each step's bytes take) and `stall` seconds once after the first (and calling
    `first()` then, if given); return every byte that came before the connection ended."""
    connection = socket.socket()
    # A small receive buffer, so the server's writes wait on this reader's pace.
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, window)
    connection.settimeout(60)
    connection.connect(("127.0.0.1", wiki.stack.port("otterwiki")))
    connection.sendall(request.encode())
    received = bytearray()
    try:
        while chunk := connection.recv(64 * 1024):
            if not received and first is not None:
                first()
            time.sleep(stall if not received else len(chunk) / rate if rate else pause)
            received += chunk
    except ConnectionResetError:
        pass  # the worker was killed mid-answer
    finally:
        connection.close()
    return bytes(received)


def _unchunk(body: bytes) -> bytes:
    """The data of an HTTP/1.1 chunked body, as far as it came whole."""
    data = bytearray()
    while True:
        size_line, found, body = body.partition(b"\r\n")
        if not found or not size_line:
            return bytes(data)
        size = int(size_line.split(b";")[0], 16)
        if size == 0 or len(body) < size:
            return bytes(data + body[:size])
        data += body[:size]
        body = body[size + 2 :]


def _pack_is_whole(raw: bytes, tmp_path) -> bool:
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    if b"transfer-encoding: chunked" in head.lower():
        rest = _unchunk(rest)
    pack = rest[rest.find(b"PACK") :]
    ok(run_git("init", "-q", str(tmp_path)))
    done = subprocess.run(
        ["git", "index-pack", "--stdin"], cwd=tmp_path, input=pack, capture_output=True
    )
    return done.returncode == 0


def test_a_slow_but_steady_clone_outlasts_the_worker_timeout(big, tmp_path):
    started = time.monotonic()
    raw = _fetch(big, pause=0.08)  # ~0.8 MiB/s: about 10 s, twice the timeout
    assert time.monotonic() - started > TIMEOUT
    assert _pack_is_whole(raw, tmp_path / "slow")


def test_a_client_that_stops_reading_does_not_hold_the_worker(big, tmp_path):
    assert _pack_is_whole(_fetch(big), tmp_path / "quick")  # a reader that keeps up gets it all
    stalled = _fetch(big, stall=TIMEOUT * 2)  # reads the first bytes, then nothing for a while
    assert not _pack_is_whole(stalled, tmp_path / "stalled")


def _zip_is_whole(raw: bytes) -> bool:
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    if b"transfer-encoding: chunked" in head.lower():
        rest = _unchunk(rest)
    try:
        archive = zipfile.ZipFile(io.BytesIO(rest))
        blob = next(name for name in archive.namelist() if name.endswith("home/blob.bin"))
        return len(archive.read(blob)) == PACK_BYTES
    except (zipfile.BadZipFile, StopIteration):
        return False


def test_a_slow_but_steady_export_outlasts_the_worker_timeout(big):
    # The reviewer's example: a 12.5 MB wiki read at 40 KB/s was cut off at the worker timeout.
    started = time.monotonic()
    raw = _export(big, pause=0.08)
    assert time.monotonic() - started > TIMEOUT
    assert _zip_is_whole(raw)


def test_an_export_reader_that_stops_does_not_hold_the_worker(big):
    assert _zip_is_whole(_export(big))
    assert not _zip_is_whole(_export(big, stall=TIMEOUT * 2))


def _write_lock_is_free(wiki: GitWiki) -> bool:
    try:
        with wiki_write_lock(wiki.stack.settings.wiki_dir(wiki.slug), timeout=0):
            return True
    except Unavailable:
        return False


def test_a_long_answer_to_a_write_lets_the_lock_go_and_outlasts_the_worker_timeout(big):
    """Twenty-second review: a save in conflict answered a 4.6 MB page; read at 47 KB/s, it
    held the wiki's write lock for 17 s, and then the worker was killed (WORKER TIMEOUT): the
    lock went only once the answer was out, and one chunk of 4.6 MB never counted as moving.
    Now the lock goes once the write is done, and the page goes out in pieces that keep the
    worker alive while they move."""
    pages = big.pages
    first = pages.put("/api/v1/pages/Conflict", json={"content": "line1\n"}).json()["revision"]
    assert pages.put("/api/v1/pages/Conflict", json={"content": "line1 theirs\n"}).is_success
    edit = pages.get("/Conflict/edit")
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', edit.text).group(1)
    cookie = "; ".join(f"{name}={value}" for name, value in edit.cookies.items())
    form = urlencode(
        {
            "csrf_token": csrf,
            "content": "line1 mine\n" + "y<" * 500_000,  # a 7.6 MB page: twice, escaped
            "commit": "mine",
            "base_revision": first,
        }
    )
    request = (
        f"POST /Conflict/save HTTP/1.1\r\nHost: {big.slug}.localhost\r\n"
        f"Authorization: Bearer {big.editor}\r\nCookie: {cookie}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\nConnection: close\r\n\r\n{form}"
    )
    lock_free = []
    started = time.monotonic()
    # At 0.4 MB/s: the server's socket buffer takes up to 4 MB at once, and the worker
    # sends the rest for about twice the timeout.
    raw = _read(
        big,
        request,
        pause=0,
        stall=0,
        first=lambda: lock_free.append(_write_lock_is_free(big)),
        window=4096,
        rate=400_000,
    )
    assert time.monotonic() - started > TIMEOUT
    head, _, page = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 409"), head[:200]  # the merge page
    assert len(page) > 7_000_000 and page.rstrip().endswith(b"</html>")
    assert lock_free == [True]  # while most of the page had still to go out
