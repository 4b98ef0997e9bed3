"""The request forms the streamable HTTP transport accepts, in front of the MCP SDK's own.

An ASGI layer between our auth layer and FastMCP's app. It answers, with a short JSON-RPC error
object and the HTTP status the spec gives, everything the SDK would refuse with a validation dump,
a plain-text body or a redirect, and it serves what the revisions we announce allow but the SDK's
stateless transport does not (JSON-RPC batches of 2025-03-26). The spec's sections followed:
Streamable HTTP in revisions 2025-03-26 (batches), 2025-06-18 and 2025-11-25 (no batches,
`MCP-Protocol-Version`), 2026-07-28 (its per-request envelope is left to the SDK); JSON-RPC 2.0
section 5 (error objects) and 6 (batches).
"""

from __future__ import annotations

import json

from fastmcp.utilities.pagination import CursorState
from mcp.types import DEFAULT_NEGOTIATED_VERSION
from mcp.types import INTERNAL_ERROR
from mcp.types import INVALID_PARAMS
from mcp.types import INVALID_REQUEST
from mcp.types import PARSE_ERROR
from mcp.types import UNSUPPORTED_PROTOCOL_VERSION
from mcp.types import jsonrpc_message_adapter
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from mcp_types.version import KNOWN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.responses import Response

from app.mcp.auth import MCP_PATH
from app.mcp.resources import BAD_CURSOR
from app.mcp.resources import decode_cursor
from app.mcp.rpc import rpc_error
from app.mcp.rpc import too_large
from app.mcp.rpc import valid_id

# Revisions whose clients may POST a JSON-RPC batch: added in 2025-03-26, removed in 2025-06-18.
# A request without MCP-Protocol-Version is taken as 2025-03-26, as 2025-06-18 tells servers to.
BATCH_VERSIONS = ("2025-03-26",)
# The SDK serves each of these: the handshake revisions (initialize answers any of them that a
# client asks for), and 2026-07-28 per request.
SUPPORTED_VERSIONS = KNOWN_PROTOCOL_VERSIONS
ALLOWED_METHODS = "POST, OPTIONS"
# Each element is served as its own request: without a bound, one body under the size cap could
# hold a few hundred thousand pings. No client we know of sends more than a handful.
MAX_BATCH = 50
# The 2025-03-26 lifecycle: initialize MUST NOT be part of a batch.
NOT_IN_BATCH = ("initialize",)


def request_id(raw):
    """Return the id of a (maybe malformed) JSON-RPC message `raw` if it is valid, else None."""
    candidate = raw.get("id") if isinstance(raw, dict) else None
    return candidate if valid_id(candidate) else None


def invalid_message(raw) -> dict | None:
    """Return the Invalid Request error for a decoded body item `raw`, or None if it is JSON-RPC.

    JSON-RPC here means one request, notification, response or error object as the MCP schema
    defines them (`jsonrpc` "2.0", a string or integer id, a string method, object params).
    An `id` member that is neither (an object, a list, a bool, a fraction, null) is refused
    outright, id null in the answer: the SDK's schema would take such a message for a
    notification with an extra member and answer nothing. Only an error object may carry id
    null (JSON-RPC 2.0 5: its request's id could not be read).
    """
    if isinstance(raw, dict) and "id" in raw and not valid_id(raw["id"]):
        if not (raw["id"] is None and "error" in raw):
            message = "Invalid Request: id must be a string or an integer"
            return rpc_error(None, INVALID_REQUEST, message)
    try:
        jsonrpc_message_adapter.validate_python(raw, by_name=False)
    except ValidationError:
        what = "a JSON-RPC 2.0 request, notification or response object"
        return rpc_error(request_id(raw), INVALID_REQUEST, f"Invalid Request: not {what}")
    return None


# Characters a pagination cursor this server gives may have: FastMCP's (base64 of a small JSON
# object) some twenty, resources/list's (app.mcp.resources.encode_cursor) base64 of a page path
# of at most 500 characters, each at most 4 UTF-8 bytes, or 6 as a JSON escape.
MAX_CURSOR_CHARS = 4096


def cursor_problem(raw) -> dict | None:
    """Return the Invalid params error for a request `raw` (a valid JSON-RPC message) whose
    `params.cursor` is not one this server gave (resources.decode_cursor's for resources/list,
    FastMCP's for the other lists), else None.

    Checked here, before the server lists anything: FastMCP reads the cursor only after the
    whole listing, and quoted the whole of a bad one back.
    """
    params = raw.get("params") if isinstance(raw, dict) else None
    cursor = params.get("cursor") if isinstance(params, dict) else None
    if cursor is None:
        return None
    try:
        if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        if raw.get("method") == "resources/list":
            decode_cursor(cursor)
        else:
            CursorState.decode(cursor)
    except ValueError:
        return rpc_error(request_id(raw), INVALID_PARAMS, BAD_CURSOR)
    return None


def version_problem(version: str | None) -> dict | None:
    """Return the error for an `MCP-Protocol-Version` header we do not serve, else None."""
    if version is None or version in SUPPORTED_VERSIONS:
        return None
    data = {"supported": list(SUPPORTED_VERSIONS), "requested": version}
    return rpc_error(None, UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version", data)


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type header names `application/json` (parameters such as charset ok)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def batch_problem(items: list, version: str) -> dict | None:
    """Return the Invalid Request error for a JSON-RPC batch `items` sent in protocol revision
    `version`, or None when its elements are to be served (JSON-RPC 2.0 section 6)."""
    if version not in BATCH_VERSIONS:
        message = f"Invalid Request: protocol revision {version} takes no JSON-RPC batches"
    elif not items:
        message = "Invalid Request: empty batch"
    elif len(items) > MAX_BATCH:
        message = f"Invalid Request: a batch holds at most {MAX_BATCH} messages"
    else:
        return None
    return rpc_error(None, INVALID_REQUEST, message)


def refusal(method: str, headers: Headers) -> tuple[int, dict | None] | None:
    """Return (HTTP status, JSON-RPC error or None) for a request to `/mcp` that is not a
    JSON POST in a protocol revision we serve, or None for one we pass on.

    OPTIONS (not a CORS preflight, which is answered before) is 204; other methods than POST
    405; an `MCP-Protocol-Version` we do not serve 400 (2025-06-18 on); a Content-Type other
    than `application/json` 415.
    """
    if method == "OPTIONS":
        return 204, None
    if method != "POST":
        message = f"Method Not Allowed: this endpoint takes POST; {method} is not served"
        return 405, rpc_error(None, INVALID_REQUEST, message)
    if problem := version_problem(headers.get("mcp-protocol-version")):
        return 400, problem
    if not is_json(headers.get("content-type")):
        message = "Unsupported Media Type: Content-Type must be application/json"
        return 415, rpc_error(None, INVALID_REQUEST, message)
    return None


class Transport:
    """ASGI middleware over FastMCP's app: serve `/mcp/` as `/mcp`, vet each request's form.

    Trailing slashes on `/mcp` are dropped, as our auth layer drops them before it checks the
    caller, so every spelling it admitted is served by the one route and none skips it. A POST in
    a handshake revision is parsed here first: bad JSON is -32700, JSON that is not JSON-RPC is
    -32600 with the id when one is readable, a batch is answered element by element where the
    revision allows one. Other methods than POST get 405 with `Allow` (this server offers no SSE
    stream and no sessions to delete), a plain OPTIONS 204.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/") != MCP_PATH:
            await self.app(scope, receive, send)
            return
        scope = {**scope, "path": MCP_PATH, "raw_path": MCP_PATH.encode()}
        headers = Headers(scope=scope)
        if refused := refusal(scope["method"], headers):
            status, body = refused
            allow = {"Allow": ALLOWED_METHODS} if status in (204, 405) else None
            await _send(scope, send, status, body, allow)
            return
        version = headers.get("mcp-protocol-version")
        if "accept" not in headers:
            # RFC 9110 12.5.1: no Accept means any type; the SDK would refuse it with a 406.
            scope["headers"] = [*scope["headers"], (b"accept", b"*/*")]
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            await self.app(scope, receive, send)  # 2026-07-28: the SDK checks its envelope
            return
        body = await read_body(receive)
        if body is None:
            # Our auth layer ends a body past its cap as a disconnect; a client that really went
            # away reads no answer, so the one that can be read is the cap's.
            await _send(scope, send, 413, too_large())
            return
        await self._post(scope, body, version or DEFAULT_NEGOTIATED_VERSION, receive, send)

    async def _post(self, scope, body: bytes, version: str, receive, send) -> None:
        try:
            raw = json.loads(body)
        except (ValueError, RecursionError):
            error = rpc_error(None, PARSE_ERROR, "Parse error: the body is not valid JSON")
            await _send(scope, send, 400, error)
            return
        if isinstance(raw, list):
            await self._batch(scope, raw, version, receive, send)
            return
        if problem := invalid_message(raw):
            await _send(scope, send, 400, problem)
            return
        if problem := cursor_problem(raw):
            await _send(scope, send, 200, problem)  # as the SDK answers invalid params
            return
        await self.app(scope, replay(body, receive), send)

    async def _batch(self, scope, items: list, version: str, receive, send) -> None:
        if problem := batch_problem(items, version):
            await _send(scope, send, 400, problem)
            return
        answers = []
        for item in items:
            answer = invalid_message(item) or cursor_problem(item)
            if answer is None and item.get("method") in NOT_IN_BATCH:
                message = f"Invalid Request: {item['method']} must not be part of a batch"
                answer = rpc_error(request_id(item), INVALID_REQUEST, message)
            if answer is None:
                answer = await self._one(scope, item, receive)
            if answer is not None:
                answers.append(answer)
        if answers:
            await _send(scope, send, 200, answers)
        else:  # only notifications and responses: 2025-03-26 says 202 and no body
            await _send(scope, send, 202, None)

    async def _one(self, scope, item: dict, receive) -> dict | None:
        """Pass one batch element to the app as its own POST; return its response object."""
        body = json.dumps(item).encode()
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        status, chunks = 0, []

        async def collect(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app({**scope, "headers": headers}, replay(body, receive), collect)
        if "id" not in item or "method" not in item:
            return None  # a notification or a response: nothing to answer
        try:
            answer = json.loads(b"".join(chunks))
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("id") == item["id"]:
            return answer
        message = f"Internal error: the request was answered with HTTP {status}"
        return rpc_error(item["id"], INTERNAL_ERROR, message)


async def read_body(receive) -> bytes | None:
    """Read a request body whole; None if the client went away (or our size cap cut it)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive):
    """Return a `receive` that yields `body` once, then waits on the real one (for disconnect)."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _send(scope, send, status: int, body, headers: dict | None = None) -> None:
    """Send `body` (a JSON value, or None for no body) with `status` and extra `headers`."""
    if body is None:
        response = Response(status_code=status, headers=headers)
    else:
        response = JSONResponse(body, status, headers)
    await response(scope, _no_receive, send)


async def _no_receive():
    return {"type": "http.disconnect"}
