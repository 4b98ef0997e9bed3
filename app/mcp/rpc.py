"""JSON-RPC 2.0 error objects, shared by the layers in front of FastMCP (auth, transport).

Shapes follow JSON-RPC 2.0 section 5.1: `{"jsonrpc": "2.0", "id": <id or null>, "error":
{"code": int, "message": str, "data"?: any}}`. MCP narrows the id to a string or an integer.
"""

from __future__ import annotations

from mcp.types import INVALID_REQUEST

# The MCP SDK reads a request body whole: cap it. A page at the page API's 1 MiB limit may take
# several times that once JSON-escaped.
MAX_REQUEST_BYTES = 8 * 1024 * 1024
TOO_LARGE_MESSAGE = f"Invalid Request: request body over {MAX_REQUEST_BYTES // (1024 * 1024)} MiB"


def rpc_error(message_id, code: int, message: str, data=None) -> dict:
    """Return a JSON-RPC 2.0 error response object (section 5.1) for request `message_id`.

    `message_id` is the request's id, or None when it could not be read.
    """
    error = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": message_id, "error": error}


def valid_id(candidate) -> bool:
    """Whether `candidate` is a usable MCP request id: a string or an integer (not a bool)."""
    return isinstance(candidate, str) or (
        isinstance(candidate, int) and not isinstance(candidate, bool)
    )


def too_large() -> dict:
    """Return the error for a POST whose body is past MAX_REQUEST_BYTES (sent with HTTP 413).

    -32600: the request as a whole cannot be taken; its id is never read, so it is null.
    """
    return rpc_error(None, INVALID_REQUEST, TOO_LARGE_MESSAGE)
