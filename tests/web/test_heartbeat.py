"""A counted response body counts what went out and always closes what made it."""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time

import pytest

from app.web import heartbeat
from app.web.heartbeat import PIECE
from app.web.heartbeat import Counted
from app.web.heartbeat import KeepAlive
from app.web.heartbeat import kept_alive
from app.wiki.turns import can_restore_priority


class Body:
    """A response body that records whether it was closed."""

    def __init__(self, chunks: list[bytes]):
        self.chunks, self.closed = chunks, 0

    def __iter__(self):
        return iter(self.chunks)

    def close(self) -> None:
        self.closed += 1


def test_each_chunk_counts_once_the_server_asks_for_the_next():
    moved: list[int] = []
    body = Counted(Body([b"abc", b"", b"de"]), moved.append)
    assert next(body) == b"abc" and moved == []  # not out yet
    assert list(body) == [b"", b"de"]
    assert sum(moved) == 5
    body.close()


def test_a_long_chunk_goes_out_in_pieces_each_counted_and_the_long_response_begins_once():
    """Twenty-second review: a 4.6 MB conflict page went out as one chunk; nothing counted
    it as moving until it was all out, and a steady reader's worker was killed."""
    moved, begun = [], []
    chunk = bytes(range(256)) * (PIECE * 3 // 256 + 7)
    body = Counted(Body([b"head", chunk, b"tail"]), moved.append, begin=lambda: begun.append(1))
    assert next(body) == b"head" and begun == []  # one piece alone starts nothing
    pieces = list(body)
    assert b"head" + b"".join(pieces) == b"head" + chunk + b"tail"
    assert all(len(piece) <= PIECE for piece in pieces) and len(pieces) == 5
    assert all(type(piece) is bytes for piece in pieces)  # gunicorn writes bytes only
    assert begun == [1] and sum(moved) == len(b"head" + chunk + b"tail")
    body.close()


def test_a_short_response_never_begins_a_long_ones_keepalive():
    begun = []
    body = Counted(Body([b"x" * PIECE]), lambda _n: None, begin=lambda: begun.append(1))
    assert list(body) == [b"x" * PIECE]
    body.close()
    assert begun == []


def test_closing_before_the_first_chunk_still_closes_the_body_and_calls_done():
    """A generator's `finally` never runs if it is closed before it started: the server may
    close a response it never iterated, and what made it must still be ended."""
    inner, ended = Body([b"x"]), []
    body = Counted(inner, lambda _n: None, lambda: ended.append(True))
    body.close()
    body.close()
    assert inner.closed == 1 and ended == [True]


def test_a_kept_alive_body_closes_its_body():
    inner = Body([b"a", b"b"])
    body = kept_alive(inner)
    assert list(body) == [b"a", b"b"]
    body.close()
    assert inner.closed == 1


def test_a_transfer_counts_as_moving_while_its_process_runs(monkeypatch):
    """Eighth review: git took in a push of 250k commits (its body already in) for longer
    than the worker timeout, sending nothing; the worker was killed after the branch moved.
    While git runs, the worker checks in; once it ended, no more."""
    from app.web import heartbeat

    beats: list[float] = []
    monkeypatch.setattr(heartbeat, "_notify", lambda: beats.append(time.monotonic()))
    running = threading.Event()
    running.set()
    keepalive = KeepAlive(longest=60, min_rate=1024, every=0.05).start()
    keepalive.moving_while(running.is_set)
    deadline = time.monotonic() + 10
    while len(beats) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(beats) >= 3  # nothing moved but the process ran
    running.clear()
    time.sleep(0.3)
    seen = len(beats)
    time.sleep(0.3)
    keepalive.stop()
    assert len(beats) == seen  # the process ended: no more check-ins


def test_a_stalled_transfer_never_checks_in(monkeypatch):
    from app.web import heartbeat

    beats: list[float] = []
    monkeypatch.setattr(heartbeat, "_notify", lambda: beats.append(time.monotonic()))
    keepalive = KeepAlive(longest=60, min_rate=1024, every=0.05).start()
    time.sleep(0.3)
    keepalive.stop()
    assert beats == []


def test_a_git_process_blocked_on_a_reader_who_stopped_is_not_working():
    """Ninth review: a push's worker was kept alive while http-backend merely existed, so a
    client that stopped reading its answer held the worker for 15 minutes. Only CPU spent
    counts: a writer blocked on a full pipe spends none."""
    import subprocess
    import sys

    from app.wiki.git_http import _working

    blocked = subprocess.Popen(["yes"], stdout=subprocess.PIPE)  # nobody reads
    busy = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 30\nwhile time.time() < end: pass"]
    )
    try:
        blocked_working, busy_working = _working(blocked), _working(busy)
        time.sleep(0.5)  # the pipe is full long before this
        blocked_working(), busy_working()
        time.sleep(0.5)
        assert not blocked_working()
        assert busy_working()
    finally:
        for process in (blocked, busy):
            process.kill()
            process.wait()
        blocked.stdout.close()


@pytest.mark.skipif(not can_restore_priority(), reason="may not raise its priority back")
def test_helper_threads_run_at_the_workers_priority_not_their_lowered_makers(monkeypatch):
    """CI: a slow but steady clone's worker was killed: its check-in thread, made by the
    clone's request lowered to SCHED_IDLE, inherited that and was starved on a busy host."""
    base = os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)
    monkeypatch.setattr(heartbeat, "_notify", None)
    monkeypatch.setattr(heartbeat, "_base_priority", None)
    heartbeat.install(lambda: None)
    seen = []
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    os.setpriority(os.PRIO_PROCESS, 0, 19)
    try:
        helper = heartbeat.helper_thread(
            lambda: seen.append((os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)))
        )
        helper.start()
        helper.join(timeout=30)
    finally:
        os.sched_setscheduler(0, base[0], os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, 0, base[1])
    assert seen == [base]


def test_a_long_response_checks_in_as_soon_as_its_second_piece_is_asked_for(monkeypatch):
    """CI, on the 3-second timeout stack: a conflict page computed for 2 s went out and its
    worker was killed before the first check-in, `every` seconds after the keep-alive began.
    A piece already taken is movement: the check-in comes at once."""
    beats = []
    monkeypatch.setattr(heartbeat, "_notify", lambda: beats.append(1))
    body = kept_alive([b"x" * (PIECE + 1)])
    next(body)
    assert beats == []  # one piece out: nothing to tell yet
    next(body)
    assert beats == [1]
    body.close()


def test_a_transfer_moving_too_little_is_cut_before_the_worker_timeout(monkeypatch):
    """Twenty-fourth review: three exports read at 16 KB/s got three workers killed by the
    arbiter at once, and their reboots stalled other tenants. The keep-alive now shuts the
    transfer's socket before the timeout comes, and the worker goes on."""
    import socket

    beats = []
    monkeypatch.setattr(heartbeat, "_notify", lambda: beats.append(1))
    monkeypatch.setattr(heartbeat, "_timeout", 1.0)
    server, client = socket.socketpair()
    client.settimeout(10)
    try:
        keepalive = KeepAlive(60, min_rate=1_000_000, every=0.2, sock=server).start()
        started = time.monotonic()
        assert client.recv(1) == b""  # shut: the reader sees the end
        keepalive.stop()
        assert time.monotonic() - started < 10 and beats == []
    finally:
        server.close()
        client.close()


def test_a_transfer_that_moves_is_never_cut(monkeypatch):
    import socket

    monkeypatch.setattr(heartbeat, "_notify", lambda: None)
    monkeypatch.setattr(heartbeat, "_timeout", 0.5)
    server, client = socket.socketpair()
    try:
        keepalive = KeepAlive(60, min_rate=1, every=0.1, sock=server).start()
        for _ in range(15):
            keepalive.moved(100)
            time.sleep(0.1)
        keepalive.stop()
        server.sendall(b"still open")
        assert client.recv(10) == b"still open"
    finally:
        server.close()
        client.close()


def test_a_finished_connection_is_closed_though_its_client_keeps_it_open(monkeypatch):
    """Twenty-fifth review: gunicorn's graceful close waited 2 s for each client to close,
    in the sync worker, so clients that read the answer and kept the socket open held every
    worker. The answer still arrives whole, what the client sent meanwhile is read (no RST
    cuts the answer), and the server's side is closed after CLOSE_LINGER at most."""
    import runpy
    import socket
    from pathlib import Path
    from types import SimpleNamespace

    monkeypatch.setattr(heartbeat, "CLOSE_LINGER", 0.05)
    conf = runpy.run_path(str(Path(heartbeat.__file__).parents[1] / "gunicorn.conf.py"))
    server, client = socket.socketpair()
    try:
        server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        client.sendall(b"unread request body" * 100)
        sent = SimpleNamespace(headers_sent=True)
        conf["post_request"](None, None, {"gunicorn.socket": server}, sent)
        assert server.fileno() == -1  # closed, while the client still holds its end
        received = b""
        while chunk := client.recv(4096):
            received += chunk
        assert received.endswith(b"\r\n\r\nok")
    finally:
        client.close()
        server.close()


def test_an_answer_not_sent_yet_is_left_to_gunicorn():
    import runpy
    import socket
    from pathlib import Path
    from types import SimpleNamespace

    conf = runpy.run_path(str(Path(heartbeat.__file__).parents[1] / "gunicorn.conf.py"))
    server, client = socket.socketpair()
    try:
        conf["post_request"](None, None, {"gunicorn.socket": server}, None)
        unsent = SimpleNamespace(headers_sent=False)
        conf["post_request"](None, None, {"gunicorn.socket": server}, unsent)
        assert server.fileno() != -1  # gunicorn may still send its error page
    finally:
        client.close()
        server.close()


def _beats_while(monkeypatch, run) -> list[float]:
    """The check-ins of a KeepAlive (nothing moved) over 0.5 s while `run(keepalive, until)`
    works in a thread of its own, which starts the KeepAlive."""
    beats: list[float] = []
    monkeypatch.setattr(heartbeat, "_notify", lambda: beats.append(time.monotonic()))
    until = time.monotonic() + 0.5
    started = threading.Event()
    made: list[KeepAlive] = []

    def thread() -> None:
        made.append(KeepAlive(longest=60, min_rate=1024, every=0.05).start())
        started.set()
        run(made[0], until)

    worker = threading.Thread(target=thread)
    worker.start()
    started.wait(5)
    worker.join(10)
    made[0].stop()
    return beats


def test_a_transfer_waiting_for_a_core_is_kept_alive_and_one_waiting_for_its_client_is_not(
    monkeypatch,
):
    """CI, 4 December: a clone read steadily was cut at the first beat, its worker having run
    under SCHED_IDLE on a busy host: it had moved too little because it got no core, not
    because its reader stalled. A thread that computes (runnable) checks in; one asleep
    (blocked on its client) does not."""

    def compute(_keepalive, until):
        while time.monotonic() < until:
            pass

    def sleep(_keepalive, until):
        time.sleep(max(0.0, until - time.monotonic()))

    assert len(_beats_while(monkeypatch, compute)) >= 3
    assert _beats_while(monkeypatch, sleep) == []


def test_a_watched_process_counts_while_runnable_and_not_while_blocked(monkeypatch):
    """git computing a pack in silence waits for this host; git blocked writing to a pipe
    nobody reads waits for its client."""
    import subprocess
    import sys

    spin = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"
    busy = [sys.executable, "-c", spin]
    for command, kept in ((busy, True), (["yes"], False)):
        process = subprocess.Popen(command, stdout=subprocess.PIPE)
        try:
            time.sleep(0.3)  # `yes` has filled its pipe by then

            def wait(keepalive, until, pid=process.pid):
                keepalive.watch(pid)
                time.sleep(max(0.0, until - time.monotonic()))

            beats = _beats_while(monkeypatch, wait)
            assert (len(beats) >= 3) is kept, (command, beats)
        finally:
            process.kill()
            process.stdout.close()
            process.wait()


def test_a_steady_reader_counts_while_the_send_waits_on_a_full_socket_buffer(monkeypatch):
    """CI, 4 December: a send into a full socket buffer returns only once about half of it
    has drained, so a client reading a 7 MB answer steadily at 400 KB/s moved nothing for
    5 s by the worker's count, and was cut as a stalled one. What the client acknowledged
    counts as it goes."""
    beats: list[float] = []
    monkeypatch.setattr(heartbeat, "_notify", lambda: beats.append(time.monotonic()))
    monkeypatch.setattr(heartbeat, "_timeout", 2.0)  # a cut after 1 s without progress
    listener = socket.create_server(("127.0.0.1", 0))
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.connect(listener.getsockname())
    sender, _ = listener.accept()
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * 1024 * 1024)
    keepalive = KeepAlive(longest=60, min_rate=32 * 1024, every=0.5, sock=sender)

    def send() -> None:
        keepalive.start()
        try:
            for _ in range(64):
                sender.sendall(bytes(64 * 1024))
                keepalive.moved(64 * 1024)
        except OSError:
            pass  # cut
        finally:
            keepalive.stop()

    sending = threading.Thread(target=send)
    sending.start()
    received, started = 0, time.monotonic()
    try:
        while time.monotonic() - started < 4 and (chunk := reader.recv(4096)):
            received += len(chunk)
            time.sleep(len(chunk) / 400_000)
    finally:
        keepalive.stop()
        for each in (reader, sender, listener):
            each.close()
        sending.join(10)
    assert received > 1_000_000
    gaps = [later - earlier for earlier, later in itertools.pairwise(beats)]
    assert len(beats) >= 5 and max(gaps) < 1.2, gaps  # checked in at (nearly) every beat


STUCK_APP = '''
import subprocess


def app(environ, start_response):
    """Start a long child and wait for it, as a view waits for its git."""
    child = subprocess.Popen(["sleep", "300"])
    open(environ["QUERY_STRING"], "w").write(str(child.pid))
    child.wait()
    start_response("200 OK", [])
    return [b"done"]
'''


def test_a_worker_the_arbiter_aborts_kills_what_it_started_first(tmp_path):
    """Review 41: gunicorn killed a worker stuck waiting for its `git blame`, and the blame ran
    on, orphaned, for a minute. The config's worker_abort kills the worker's children first."""
    import subprocess
    import sys
    import urllib.request

    from tests.conftest import free_ports

    (tmp_path / "stuck_app.py").write_text(STUCK_APP)
    port = free_ports(1)[0]
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "ROBOT_WORKER_TIMEOUT": "2",
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.getcwd()}",
    }
    config = os.path.join(os.getcwd(), "app", "gunicorn.conf.py")
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", config, "--workers", "1", "stuck_app:app"]
    server = subprocess.Popen(gunicorn, env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "no gunicorn"
                time.sleep(0.2)
        pid_file = tmp_path / "child.pid"
        with pytest.raises(OSError):  # the worker is killed under it: gunicorn's 500, or none
            urllib.request.urlopen(f"http://127.0.0.1:{port}/?{pid_file}", timeout=60)
        child = int(pid_file.read_text())
        deadline = time.monotonic() + 10
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(child), "the aborted worker's child still runs"
    finally:
        server.terminate()
        server.wait(timeout=30)


def running(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, killed and not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False
