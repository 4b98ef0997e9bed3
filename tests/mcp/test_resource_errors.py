"""A refusal of the page API while listing resources becomes the MCP error that says what to do."""

from __future__ import annotations

import pytest
from mcp.types import INTERNAL_ERROR
from mcp.types import INVALID_PARAMS

from app.core.errors import Forbidden
from app.core.errors import InternalError
from app.core.errors import NotFound
from app.core.errors import TooManyRequests
from app.core.errors import Unavailable
from app.mcp.resources import SERVER_BUSY
from app.mcp.resources import listing_error


def test_a_busy_wiki_is_server_busy_with_its_retry_after():
    """Was INVALID_PARAMS: a client took a crowded wiki's 429 for a bad request of its own."""
    error = listing_error(TooManyRequests("busy; try again", retry_after=3))
    assert (error.code, error.message) == (SERVER_BUSY, "busy; try again")
    assert error.data == {"status": 429, "retryAfter": 3}


def test_an_unavailable_wiki_with_a_retry_after_is_server_busy_too():
    error = listing_error(Unavailable("slow uploads", retry_after=5))
    assert error.code == SERVER_BUSY and error.data == {"status": 503, "retryAfter": 5}


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFound("no such wiki"), INVALID_PARAMS),
        (Forbidden("not a member"), INVALID_PARAMS),
        (Unavailable("down"), INTERNAL_ERROR),
        (InternalError("broken"), INTERNAL_ERROR),
    ],
)
def test_other_refusals_keep_their_kind(error, code):
    mapped = listing_error(error)
    assert (mapped.code, mapped.message, mapped.data) == (code, error.message, None)
