"""Slow readers never hold every worker: a response going out slowly past SLOW_SEND needs a place.

A client that reads slowly (a 10 MB attachment, a clone, an export, to a receive window of a
few kilobytes) holds its worker until the response is out; four such readers once held every
worker for 27 s, until gunicorn killed them. A response still going out SLOW_SEND seconds after
the app returned it, and that went out slower than FAST_RATE over the last SLOW_SEND seconds,
needs one of the host's places for slow transfers, the same that slow request bodies take
(app.web.bodies: one fewer than the workers for both together, one per pool of callers, and
visitors one fewer again). When none is free to it, its socket is shut and the client gets what
was sent so far. A response moving faster needs no place: it ends soon (two 10 MB downloads at
2 MB/s were once cut for taking over two seconds), and is looked at again every SLOW_SEND.
A response buffering proxy (Caddy's response_buffers) takes slow readers off the workers in the
first place.

A bulk transfer (a clone, an export) holds its pool's turn while it goes out (app.wiki.turns);
once it needs a place, its turn is handed on (`on_slow`).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from app.web.bodies import Place
from app.web.bodies import SlowPlaces
from app.web.bodies import shut

# Seconds a response may take to go out whole, and the window its rate is measured over.
SLOW_SEND = 2.0
# Bytes a second above which a response going out needs no place: a 10 MB download at this
# rate takes 40 s of a worker; a reader slower than 2 Mbit/s is slow.
FAST_RATE = 256 * 1024


class SendWatch:
    """Watches the response a worker is sending (gunicorn's sync workers send one at a time):
    past SLOW_SEND, going out slower than FAST_RATE, it takes a place of `slow`, or its socket
    is shut and the send fails.

    One thread per worker process, started at the first response, waits for each deadline:
    a thread per response would cost every request a thread start. It is woken only when it
    idles: deadlines only move later, so a thread already waiting for an earlier one wakes in
    time, finds the later one and waits on; stop() wakes no one. Most requests wake it never.
    """

    def __init__(self, slow: SlowPlaces):
        self._slow = slow
        self._changed = threading.Condition()
        self._sock = None  # the socket of the response being watched, until it has a place
        self._deadline = 0.0  # time.monotonic() seconds
        self._pool: Path | None = None
        self._visitor = False
        self._on_slow = None  # called (once) when the response being watched needs a place
        self._sent = 0  # bytes of the response the server has taken
        self._sent_at_check = 0
        self._place: Place | None = None
        self._cut = False
        self._idle = False  # the thread waits for a response to watch, no deadline
        self._thread: threading.Thread | None = None

    def start(self, environ, pool: Path | None = None, visitor: bool = False, on_slow=None) -> bool:
        """Watch the response to this request from now (the app has returned it); return
        whether there is a socket to watch (gunicorn's; not under a test client). `pool` and
        `visitor` say whose place it would take (SlowPlaces.take); `on_slow` (no arguments;
        any thread) is called when it needs one. Count its bytes with sent()."""
        sock = environ.get("gunicorn.socket")
        if sock is None:
            return False
        with self._changed:
            if self._thread is None or not self._thread.is_alive():  # none yet, or forked
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()
            self._sock, self._deadline, self._cut = sock, time.monotonic() + SLOW_SEND, False
            self._pool, self._visitor, self._on_slow = pool, visitor, on_slow
            self._sent = self._sent_at_check = 0
            if self._idle:
                self._changed.notify()
        return True

    def sent(self, count: int) -> None:
        """`count` more bytes of the watched response went out."""
        self._sent += count  # read by the watcher; a torn read only moves one check

    def stop(self) -> bool:
        """The response is out (or its sending ended): free its place; return whether it was
        cut for want of one."""
        with self._changed:
            self._sock, self._on_slow = None, None
            if self._place is not None:
                self._place.free()
            self._place = None
            return self._cut

    def _run(self) -> None:
        with self._changed:
            while True:
                if self._sock is None:
                    self._idle = True
                    self._changed.wait()
                    self._idle = False
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._changed.wait(left)
                    continue
                if self._sent - self._sent_at_check >= FAST_RATE * SLOW_SEND:
                    self._sent_at_check = self._sent  # going out fast: look again later
                    self._deadline += SLOW_SEND
                    continue
                if self._on_slow is not None:
                    self._on_slow()
                self._place = self._slow.take(self._pool, self._visitor)
                if self._place is None:
                    self._cut = True
                    shut(self._sock, socket.SHUT_RDWR)
                self._sock, self._on_slow = None, None  # it has a place, or is cut: until stop()
