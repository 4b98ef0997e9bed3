"""Slow readers never hold every worker: a response still going out after SLOW_SEND needs a place.

A client that reads slowly (a 10 MB attachment, a clone, an export, to a receive window of a
few kilobytes) holds its worker until the response is out; four such readers once held every
worker for 27 s, until gunicorn killed them, and four at a steady 1 MB/s stalled every other
tenant's pages for seconds. A response still going out SLOW_SEND seconds after the app returned
it needs one of the host's places for slow transfers, the same that slow request bodies take
(app.web.bodies: one fewer than the workers for both together, one per pool of callers,
visitors one fewer again, and a visitor's given up to a member who finds none). When none is
free to it, its socket is shut and the client gets what was sent so far. How fast it goes does
not matter: while it goes, it holds a worker. A response buffering proxy (Caddy's
response_buffers) takes every long download off the workers: it reads each response at once.

A bulk transfer (a clone, an export) holds its pool's turn while it goes out (app.wiki.turns);
once it needs a place, its turn is handed on (`on_slow`).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from app.web.bodies import EVICTION_POLL
from app.web.bodies import Place
from app.web.bodies import SlowPlaces
from app.web.heartbeat import helper_thread
from app.web.heartbeat import shut

# Seconds a response may take to go out whole before it needs one of the host's places.
SLOW_SEND = 2.0


class SendWatch:
    """Watches the response a worker is sending (gunicorn's sync workers send one at a time):
    past SLOW_SEND it takes a place of `slow`, or its socket is shut and the send fails; a
    visitor's place is watched on, and given up (the send cut) when a member asks for it.

    One thread per worker process, started at the first response, waits for each deadline:
    a thread per response would cost every request a thread start. It is woken only when it
    idles: deadlines only move later, so a thread already waiting for an earlier one wakes in
    time, finds the later one and waits on; stop() wakes no one. Most requests wake it never.
    """

    def __init__(self, slow: SlowPlaces):
        self._slow = slow
        self._changed = threading.Condition()
        self._sock = None  # the socket of the response being watched
        self._deadline = 0.0  # time.monotonic() seconds
        self._pool: Path | None = None
        self._owner: Path | None = None
        self._visitor = False
        self._on_slow = None  # called (once) when the response being watched needs a place
        self._response = 0  # counts responses, so a place taken for an ended one is let go
        self._place: Place | None = None
        self._cut = False
        self._idle = False  # the thread waits for a response to watch, no deadline
        self._thread: threading.Thread | None = None

    def start(
        self,
        environ,
        pool: Path | None = None,
        visitor: bool = False,
        on_slow=None,
        owner: Path | None = None,
    ) -> bool:
        """Watch the response to this request from now (the app has returned it); return
        whether there is a socket to watch (gunicorn's; not under a test client). `pool`,
        `visitor` and `owner` say whose place it would take (SlowPlaces.take); `on_slow` (no
        arguments; any thread) is called when it needs one."""
        sock = environ.get("gunicorn.socket")
        if sock is None:
            return False
        with self._changed:
            if self._thread is None or not self._thread.is_alive():  # none yet, or forked
                self._thread = helper_thread(self._run, name="robot-sends")
                self._thread.start()
            self._sock, self._deadline, self._cut = sock, time.monotonic() + SLOW_SEND, False
            self._pool, self._visitor, self._on_slow = pool, visitor, on_slow
            self._owner = owner
            self._response += 1
            if self._idle:
                self._changed.notify()
        return True

    def stop(self) -> bool:
        """The response is out (or its sending ended): free its place; return whether it was
        cut for want of one (or gave a visitor's up)."""
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
                elif self._place is not None:  # a visitor's: watched until a member asks
                    self._changed.wait(EVICTION_POLL)
                    if self._sock is not None and self._place is not None:
                        if self._place.evicted():
                            self._place.free()  # at once: the member is waiting for it
                            self._place = None
                            self._cut_send()
                elif (left := self._deadline - time.monotonic()) > 0:
                    self._changed.wait(left)
                else:
                    self._take_place()

    def _take_place(self) -> None:
        """At the deadline (with the condition held): hand the turn on, take a place (the
        condition let go meanwhile: a member may wait for one), or cut the send."""
        response, pool, visitor, owner = self._response, self._pool, self._visitor, self._owner
        if self._on_slow is not None:
            self._on_slow()
            self._on_slow = None
        self._changed.release()
        try:
            place = self._slow.take(pool, visitor, owner)
        finally:
            self._changed.acquire()
        if response != self._response or self._sock is None:
            if place is not None:
                place.free()  # the response ended meanwhile
            return
        self._place = place
        if place is None:
            self._cut_send()
        elif not visitor:
            self._sock = None  # a member's place: nothing more to watch until stop()

    def _cut_send(self) -> None:
        self._cut = True
        shut(self._sock, socket.SHUT_RDWR)
        self._sock = None
