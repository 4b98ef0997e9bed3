"""Slow readers never hold every worker: a response still going out after SLOW_SEND needs a place.

A client that reads slowly (a 10 MB attachment, a clone, an export, to a receive window of a
few kilobytes) holds its worker until the response is out; four such readers once held every
worker for 27 s, until gunicorn killed them. A response still going out SLOW_SEND seconds after
the app returned it needs one of the host's places for slow transfers, the same that slow
request bodies take (app.web.bodies; one fewer than the workers, for both together); when none
is free its socket is shut and the client gets what was sent so far. The places go first come,
first served: clients reading slowly can still take them all, and a long download of someone
else's, begun then, is cut; one worker stays free for everyone. A response buffering proxy
(Caddy's response_buffers) takes slow readers off the workers in the first place.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from app.web.bodies import SlowPlaces
from app.web.bodies import shut

# Seconds a response may take to go out whole before it needs one of the host's slow-send places.
SLOW_SEND = 2.0


class SendWatch:
    """Watches the response a worker is sending (gunicorn's sync workers send one at a time):
    past SLOW_SEND it takes a place of `slow`, or its socket is shut and the send fails.

    One thread per worker process, started at the first response, waits for each deadline:
    a thread per response would cost every request a thread start. It is woken only when it
    idles: deadlines only move later, so a thread already waiting for an earlier one wakes in
    time, finds the later one and waits on; stop() wakes no one. Most requests wake it never.
    """

    def __init__(self, slow: SlowPlaces):
        self._slow = slow
        self._changed = threading.Condition()
        self._sock = None  # the socket of the response being watched, until its deadline
        self._deadline = 0.0  # time.monotonic() seconds
        self._place: int | None = None
        self._cut = False
        self._idle = False  # the thread waits for a response to watch, no deadline
        self._thread: threading.Thread | None = None

    def start(self, environ) -> bool:
        """Watch the response to this request from now (the app has returned it); return
        whether there is a socket to watch (gunicorn's; not under a test client)."""
        sock = environ.get("gunicorn.socket")
        if sock is None:
            return False
        with self._changed:
            if self._thread is None or not self._thread.is_alive():  # none yet, or forked
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()
            self._sock, self._deadline, self._cut = sock, time.monotonic() + SLOW_SEND, False
            if self._idle:
                self._changed.notify()
        return True

    def stop(self) -> bool:
        """The response is out (or its sending ended): free its place; return whether it was
        cut for want of one."""
        with self._changed:
            self._sock = None
            self._free()
            return self._cut

    def _free(self) -> None:
        if self._place is not None and self._place >= 0:  # NO_PLACES: nothing to close
            os.close(self._place)
        self._place = None

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
                self._place = self._slow.take()
                if self._place is None:
                    self._cut = True
                    shut(self._sock, socket.SHUT_RDWR)
                self._sock = None  # watched to its deadline: nothing more to do until stop()
