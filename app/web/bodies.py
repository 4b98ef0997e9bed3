"""A request's body is received whole before the app runs; slow bodies never hold every worker.

The wiki service receives a body before its wiki's write lock and turn are taken
(app.wiki.gateway); the api and auth services before Flask reads it (`ReceivedBodies`, from
app.web.flask_app).

A client may send its body slowly, a byte at a time: read inside the wiki's write lock or turn
(app.wiki.turns), it held them, and every other request of the wiki waited. Received first,
into memory (up to IN_MEMORY bytes) or an unnamed temporary file, it holds only the worker
that reads it, which gunicorn's timeout bounds (a transfer moving at least
TRANSFER_MIN_RATE checks in to stay alive, app.web.heartbeat).

Slow bodies: a body still arriving SLOW_AFTER seconds after it began needs one of the host's
SlowPlaces places, one fewer than the workers, so clients trickling bodies can never hold every
worker (four such uploads once stalled every wiki for 40 s). When none is free its socket is
shut for reading and the request is answered 503 with Retry-After. Only a caller who may write
takes a place: anyone else's body (at most a search form's, app.wiki.gateway) still arriving
after SLOW_AFTER is cut at once and answered 408, so strangers cannot take the places away from
the wiki's writers. The api and auth services cannot tell writers (their callers are mostly
signed out): any slow body takes a place there, and four slow sign-in forms no longer hold
the auth service's every worker. A buffering proxy in front (Caddy's request_buffers) keeps
slow bodies off the workers in the first place.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

from werkzeug.wrappers import Response
from werkzeug.wsgi import get_input_stream

from app.core.csp import ERROR_POLICY
from app.core.csp import security_headers
from app.core.errors import BadRequest
from app.core.errors import PayloadTooLarge
from app.core.errors import RequestTimeout
from app.core.errors import RobotError
from app.core.errors import Unavailable
from app.core.errors import error_body
from app.core.locks import try_lock
from app.web.heartbeat import TRANSFER_LONGEST
from app.web.heartbeat import TRANSFER_MIN_RATE
from app.web.heartbeat import KeepAlive
from app.web.heartbeat import shut

log = logging.getLogger("robot.web")

# Bytes of a body kept in memory; past this it goes on in a temporary file.
IN_MEMORY = 1024 * 1024
_CHUNK = 64 * 1024
# Seconds a body may take to arrive whole before it needs one of the host's slow-body places.
SLOW_AFTER = 0.2
# Seconds a client refused for want of a slow-body place is told to wait.
RETRY_AFTER = 5


class SlowPlaces:
    """The host's places for slow transfers (bodies arriving, responses going out): `places`
    flock files `slow-N.lock` in `folder`, shared by every worker (the kernel frees a dead
    worker's).

    Callers fall in pools (app.wiki.turns: a wiki's visitors, its members, its owner), and a
    pool holds one place at a time, so one crowd cannot take them all. Visitors (anonymous
    readers, people who are no members, Otterwiki's static files) share all places but one,
    and give theirs up to a wiki's member who finds none free: the visitor's transfer is cut
    (it watches for `slow-N.evict` while it holds place N, Place.evicted()) and the member
    waits up to EVICTION_WAIT for the place. Strangers reading slowly, from however many
    public wikis, never cut a member's transfer; members of as many wikis as there are places
    can still take them all. The wiki service passes pools; the api and auth services none.

    The members' and owner's pools of one owner's wikis together hold all places but one (at
    least one), whatever they hold them for: three members trickling uploads to three wikis of
    one owner took every place, and another owner's saves were refused (twenty-second review).
    The owner's slots (`owner-slot-N.lock` in the owner's folder) count them. Another set of
    places (waits for a wiki's write lock, app.wiki.turns.WriteWaits) shares the folder, with
    a `pool_file` of its own, and the owner's slots: it has fewer, so takes fewer.
    """

    def __init__(self, folder: Path, places: int, pool_file: str = "slow.lock"):
        self.folder = folder
        self.places = places
        self.pool_file = pool_file  # in a pool's folder, held while the pool holds a place
        self.per_owner = max(1, places - 1)

    def take(
        self, pool: Path | None = None, visitor: bool = False, owner: Path | None = None
    ) -> Place | None:
        """Take a free place and return it (free it with Place.free()), or None when none is
        free to this caller. `pool`: the folder of the caller's pool (None: no pool limit);
        `visitor`: whether the caller is no member of the wiki; `owner`: the folder of the
        wiki's owner, whose members' and own pools hold `per_owner` places at most (None, or a
        visitor: no owner limit). A caller who is no visitor finding none free has a
        visitor's place given up to it, and may wait up to EVICTION_WAIT seconds for it. If
        the files cannot be opened, a Place holding nothing (logged): the transfer goes on
        without a place, as a request goes on without a turn."""
        held: list[int] = []
        try:
            self.folder.mkdir(mode=0o750, parents=True, exist_ok=True)
            if pool is not None:
                pool.mkdir(mode=0o750, parents=True, exist_ok=True)
                if not _lock(pool / self.pool_file, held):
                    return None  # the pool holds its place already
            if owner is not None and not visitor and not self._owner_slot(owner, held):
                Place(held).free()
                return None  # the owner's pools hold their share
            place = self._take_free(held, visitor)
            if place is None and not visitor and self._evict_a_visitor():
                deadline = time.monotonic() + EVICTION_WAIT
                while place is None and time.monotonic() < deadline:
                    time.sleep(_EVICTION_PAUSE)
                    place = self._take_free(held, visitor)
            if place is not None:
                return place
        except OSError as error:
            log.warning("slow transfer without a place: cannot open %s (%s)", error.filename, error)
            Place(held).free()
            return Place([])
        Place(held).free()
        return None

    def _owner_slot(self, owner: Path, held: list[int]) -> bool:
        """Take one of the owner's first `per_owner` slots into `held`; whether one was free.
        The last first: sets with fewer slots (lock waits) take the first ones only, so the
        owner's slow transfers leave those to its lock waits while they can."""
        owner.mkdir(mode=0o750, parents=True, exist_ok=True)
        return any(
            _lock(owner / f"owner-slot-{n}.lock", held) for n in reversed(range(self.per_owner))
        )

    def _take_free(self, held: list[int], visitor: bool) -> Place | None:
        # Members try the place visitors never take first.
        order = range(self.places - 1) if visitor else reversed(range(self.places))
        for n in order:
            if _lock(self.folder / f"slow-{n}.lock", held):
                marker = self.folder / f"slow-{n}.visitor"
                (self.folder / f"slow-{n}.evict").unlink(missing_ok=True)  # a request for the last
                if visitor:
                    marker.touch()
                    return Place(held, marker, self.folder / f"slow-{n}.evict")
                marker.unlink(missing_ok=True)  # left by a visitor's worker that died
                return Place(held)
        return None

    def _evict_a_visitor(self) -> bool:
        """Ask one visitor holding a place to give it up; return whether one was asked."""
        for n in range(self.places - 1):
            if (self.folder / f"slow-{n}.visitor").exists():
                (self.folder / f"slow-{n}.evict").touch()
                return True
        return False


# Seconds a member waits for a visitor's place to be given up (its holder looks every
# EVICTION_POLL seconds), and between tries meanwhile.
EVICTION_WAIT = 1.0
EVICTION_POLL = 0.25
_EVICTION_PAUSE = 0.02


class Place:
    """A place of SlowPlaces held: the open files whose locks hold it, and for a visitor's
    place the files that mark it (`visitor`) and ask for it (`evict`)."""

    def __init__(self, fds: list[int], visitor: Path | None = None, evict: Path | None = None):
        self._fds = fds
        self._visitor, self._evict = visitor, evict

    def evicted(self) -> bool:
        """Whether a member asked for this visitor's place (never, for a member's)."""
        return self._evict is not None and self._evict.exists()

    def free(self) -> None:
        """Give the place back. Safe to call again."""
        if self._visitor is not None:
            self._visitor.unlink(missing_ok=True)
            self._visitor = None
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)


def _lock(path: Path, held: list[int]) -> bool:
    """Lock the file at `path` (made if missing) without waiting; on success add its open file
    to `held` and return True."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o640)
    if not try_lock(fd):
        os.close(fd)
        return False
    held.append(fd)
    return True


class BodyWatch:
    """Past SLOW_AFTER, a body still arriving takes a slow-body place (if `may_take_place`,
    for `pool`), or has its socket shut for reading (its read then ends, and `cut` says why)."""

    def __init__(
        self,
        slow: SlowPlaces,
        sock,
        may_take_place: bool,
        pool: Path | None,
        owner: Path | None = None,
    ):
        self._slow, self._sock, self._may_take_place = slow, sock, may_take_place
        self._pool, self._owner = pool, owner
        self._lock = threading.Lock()
        self._done = False
        self._place: Place | None = None
        self.cut = False
        self._timer = threading.Timer(SLOW_AFTER, self._check)
        self._timer.daemon = True
        self._timer.start()

    def _check(self) -> None:
        with self._lock:
            if self._done:
                return
            if self._may_take_place:
                self._place = self._slow.take(self._pool, owner=self._owner)
            if self._place is None:
                self.cut = True
                shut(self._sock, socket.SHUT_RD)

    def refusal(self) -> RobotError:
        """What to answer a body that was cut: 503 (no place) or 408 (may take none)."""
        return _too_many_slow() if self._may_take_place else _too_slow()

    def stop(self) -> None:
        with self._lock:
            self._done = True
            self._timer.cancel()
            if self._place is not None:
                self._place.free()
            self._place = None


def watch_body(
    environ,
    slow: SlowPlaces | None,
    writer: bool,
    pool: Path | None,
    owner: Path | None = None,
) -> BodyWatch | None:
    """Watch the request's body as it is read: past SLOW_AFTER it takes a place of `slow` for
    `pool` of `owner` (if `writer`), or its socket is shut for reading, its read ends early, and
    `BodyWatch.cut` says so (answer `BodyWatch.refusal()`). Call stop() once it is read.
    None when there is nothing to watch (no places, or no socket: not under gunicorn)."""
    sock = environ.get("gunicorn.socket")
    if slow is None or sock is None:
        return None
    return BodyWatch(slow, sock, writer, pool, owner)


def has_body(environ) -> bool:
    """Whether the request declares a body (a positive Content-Length, or chunked)."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return True
    length = environ.get("CONTENT_LENGTH", "")
    return length.isdigit() and int(length) > 0


def receive_body(
    environ,
    cap: int,
    slow: SlowPlaces | None = None,
    writer: bool = True,
    pool: Path | None = None,
    owner: Path | None = None,
):
    """Read the request's body whole and put it in place of `wsgi.input`, with its length.

    `cap`: the most bytes any route of the service takes; `slow`: the host's slow-body places
    (None: no limit); `writer`: whether the caller may write, and so take a place; `pool`: the
    folder of the caller's pool, `owner` its wiki owner's (SlowPlaces.take). Returns the
    file holding the body (the caller closes it once the response is out), or None if the
    request has no body. Raises PayloadTooLarge (413) for a body over `cap`, declared or sent,
    BadRequest if it ends before its Content-Length, Unavailable (503, `retry_after`) if it is
    slow and no slow-body place is free, and RequestTimeout (408) if it is slow and the caller
    may not write.
    """
    if not has_body(environ):
        return None
    declared = environ.get("CONTENT_LENGTH", "")
    too_large = PayloadTooLarge(f"the request body may hold at most {cap} bytes", max_bytes=cap)
    if declared.isdigit() and int(declared) > cap:
        raise too_large
    body = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)
    sock = environ.get("gunicorn.socket")
    keepalive = KeepAlive(TRANSFER_LONGEST, TRANSFER_MIN_RATE, sock=sock).start()
    watch = watch_body(environ, slow, writer, pool, owner)
    try:
        stream, total = get_input_stream(environ), 0
        while chunk := read_chunk(stream):
            total += len(chunk)
            if total > cap:
                raise too_large
            body.write(chunk)
            keepalive.moved(len(chunk))
        if declared.isdigit() and total < int(declared):
            raise BadRequest(f"the request body ended after {total} of {declared} bytes")
    except BaseException as error:
        body.close()
        if watch is not None and watch.cut and isinstance(error, BadRequest):
            raise watch.refusal() from None
        raise
    finally:
        keepalive.stop()
        if watch is not None:
            watch.stop()
    body.seek(0)
    environ["wsgi.input"] = body
    environ["CONTENT_LENGTH"] = str(total)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["wsgi.input_terminated"] = True  # whoever reads on may read it to its end
    return body


def _too_many_slow() -> Unavailable:
    return Unavailable(
        "too many uploads and downloads are going slowly (on this host, or to this owner's "
        "wikis); try again later",
        retry_after=RETRY_AFTER,
    )


def _too_slow() -> RequestTimeout:
    return RequestTimeout(
        f"a body from a caller who may not write to this wiki must arrive within {SLOW_AFTER} s"
    )


def read_chunk(stream) -> bytes:
    """The next chunk (up to 64 KiB) of a request body; BadRequest if it cannot be read (a
    malformed chunked body, which gunicorn's parser raises on, or a client gone)."""
    try:
        return stream.read(_CHUNK)
    except Exception as error:  # gunicorn.http.errors.ParseException is not an OSError
        raise BadRequest(f"the request body could not be read ({type(error).__name__})") from None


class ReceivedBodies:
    """WSGI middleware: receive each request's body whole (`receive_body`, up to `cap` bytes,
    slow ones taking a place of `slow`) before `app` (a Flask app's wsgi_app) runs, and close
    it once `app` returns; answer what receive_body raises as a JSON error
    (app.core.errors.error_body) without running the app."""

    def __init__(self, app, cap: int, slow: SlowPlaces):
        self.app, self.cap, self.slow = app, cap, slow

    def __call__(self, environ, start_response):
        try:
            body = receive_body(environ, self.cap, self.slow)
        except RobotError as error:
            retry = error.retry_after
            headers = {"Retry-After": str(retry)} if retry is not None else {}
            # Answered before the service's app, whose hooks add the platform's headers.
            headers |= {"Connection": "close", **security_headers(ERROR_POLICY)}
            response = Response(
                json.dumps(error_body(error)),
                status=error.status,
                headers=headers,
                mimetype="application/json",
            )
            return response(environ, start_response)
        try:
            return self.app(environ, start_response)
        finally:
            # Flask has run the view, which read what it wanted; the api and auth services
            # stream no response that reads the body later.
            if body is not None:
                body.close()
