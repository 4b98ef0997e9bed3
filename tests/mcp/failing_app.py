"""A tiny ASGI app that fails the ways uvicorn answers itself: served by a real uvicorn with the
MCP service's protocol (tests/mcp/test_server_errors.py)."""


async def app(scope, receive, send):
    """`/raise` raises and `/return` returns, both before starting an answer; else 200 with
    the length of the body read."""
    if scope["path"] == "/raise":
        raise RuntimeError("failed before answering")
    if scope["path"] == "/return":
        return
    length, more = 0, True
    while more:
        message = await receive()
        length += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(length).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
