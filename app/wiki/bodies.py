"""A request's body is received whole before its wiki's write lock and turn are taken.

A client may send its body slowly, a byte at a time: read inside the wiki's write lock or turn
(app.wiki.turns), it held them, and every other request of the wiki waited. Received first,
into memory (up to IN_MEMORY bytes) or an unnamed temporary file, it holds only the worker
that reads it, which gunicorn's timeout bounds (a transfer moving at least
TRANSFER_MIN_RATE checks in to stay alive, app.web.heartbeat).
"""

from __future__ import annotations

import tempfile

from werkzeug.wsgi import get_input_stream

from app.core.errors import BadRequest
from app.core.errors import PayloadTooLarge
from app.web.heartbeat import TRANSFER_LONGEST
from app.web.heartbeat import TRANSFER_MIN_RATE
from app.web.heartbeat import KeepAlive

# Bytes of a body kept in memory; past this it goes on in a temporary file.
IN_MEMORY = 1024 * 1024
_CHUNK = 64 * 1024


def has_body(environ) -> bool:
    """Whether the request declares a body (a positive Content-Length, or chunked)."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return True
    length = environ.get("CONTENT_LENGTH", "")
    return length.isdigit() and int(length) > 0


def receive_body(environ, cap: int):
    """Read the request's body whole and put it in place of `wsgi.input`, with its length.

    `cap`: the most bytes any route of the service takes. Returns the file holding the body
    (the caller closes it once the response is out), or None if the request has no body.
    Raises PayloadTooLarge (413) for a body over `cap`, declared or sent, and BadRequest if it
    ends before its Content-Length.
    """
    if not has_body(environ):
        return None
    declared = environ.get("CONTENT_LENGTH", "")
    too_large = PayloadTooLarge(f"the request body may hold at most {cap} bytes", max_bytes=cap)
    if declared.isdigit() and int(declared) > cap:
        raise too_large
    body = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)
    keepalive = KeepAlive(TRANSFER_LONGEST, TRANSFER_MIN_RATE).start()
    try:
        stream, total = get_input_stream(environ), 0
        while chunk := _read(stream):
            total += len(chunk)
            if total > cap:
                raise too_large
            body.write(chunk)
            keepalive.moved(len(chunk))
        if declared.isdigit() and total < int(declared):
            raise BadRequest(f"the request body ended after {total} of {declared} bytes")
    except BaseException:
        body.close()
        raise
    finally:
        keepalive.stop()
    body.seek(0)
    environ["wsgi.input"] = body
    environ["CONTENT_LENGTH"] = str(total)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["wsgi.input_terminated"] = True  # whoever reads on may read it to its end
    return body


def _read(stream) -> bytes:
    """The next chunk of the body; BadRequest if it cannot be read (a malformed chunked body,
    which gunicorn's parser raises on, or a client gone)."""
    try:
        return stream.read(_CHUNK)
    except Exception as error:  # gunicorn.http.errors.ParseException is not an OSError
        raise BadRequest(f"the request body could not be read ({type(error).__name__})") from None
