"""What the auth layer (app/mcp/auth.py) put in the state of the HTTP request being served."""

from __future__ import annotations

from fastmcp.server.dependencies import get_http_request

from app.core.store import Wiki


def caller() -> tuple[str, str | None]:
    """Return (wiki slug, the caller's Authorization header or None when anonymous).

    Raises RuntimeError outside an HTTP request (FastMCP's in-memory client has none).
    """
    state = get_http_request().state
    return state.wiki_slug, state.authorization


def current_wiki() -> Wiki | None:
    """Return the wiki row the request's Host named, or None outside an HTTP request."""
    try:
        return getattr(get_http_request().state, "wiki", None)
    except RuntimeError:
        return None
