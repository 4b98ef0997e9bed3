import base64

import pytest
from fastmcp.utilities.pagination import CursorState
from starlette.datastructures import Headers

from app.mcp.resources import decode_cursor
from app.mcp.resources import encode_cursor
from app.mcp.transport import batch_problem
from app.mcp.transport import cursor_problem
from app.mcp.transport import invalid_message
from app.mcp.transport import is_json
from app.mcp.transport import refusal
from app.mcp.transport import request_id
from app.mcp.transport import version_problem


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/json-patch+json", False),
        ("text/plain", False),
        (None, False),
    ],
)
def test_only_application_json_is_json(content_type, expected):
    assert is_json(content_type) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [({"id": 3}, 3), ({"id": "a"}, "a"), ({"id": True}, None), ({"id": 1.5}, None), ([1], None)],
)
def test_only_a_string_or_integer_id_is_echoed(raw, expected):
    assert request_id(raw) == expected


def test_a_jsonrpc_request_is_valid_and_junk_is_invalid_request():
    assert invalid_message({"jsonrpc": "2.0", "id": 1, "method": "ping"}) is None
    error = invalid_message({"jsonrpc": "1.0", "id": 2, "method": "ping"})
    assert error["id"] == 2 and error["error"]["code"] == -32600


@pytest.mark.parametrize("version", [None, "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"])
def test_announced_versions_are_served(version):
    assert version_problem(version) is None


def test_unknown_version_names_the_supported_ones():
    error = version_problem("2030-01-01")["error"]
    assert error["code"] == -32022 and "2025-06-18" in error["data"]["supported"]


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        ("OPTIONS", {}, 204),
        ("GET", {}, 405),
        ("DELETE", {"mcp-session-id": "x"}, 405),
        ("POST", {"content-type": "application/json", "mcp-protocol-version": "x"}, 400),
        ("POST", {"content-type": "text/plain"}, 415),
    ],
)
def test_forms_refused_before_the_body_is_read(method, headers, status):
    assert refusal(method, Headers(headers))[0] == status


def test_a_json_post_is_not_refused():
    assert refusal("POST", Headers({"content-type": "application/json"})) is None


@pytest.mark.parametrize(
    ("items", "version", "served"),
    [
        ([{}], "2025-03-26", True),
        ([{}], "2025-06-18", False),
        ([{}], "2026-07-28", False),
        ([], "2025-03-26", False),
        ([{}] * 51, "2025-03-26", False),
    ],
)
def test_batches_only_in_2025_03_26_and_bounded(items, version, served):
    assert (batch_problem(items, version) is None) is served


@pytest.mark.parametrize("bad_id", [{"a": 1}, True, float("inf"), [1], 1.5, None])
def test_an_unusable_id_is_invalid_request_with_id_null(bad_id):
    error = invalid_message({"jsonrpc": "2.0", "id": bad_id, "method": "ping"})
    assert error == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "Invalid Request: id must be a string or an integer"},
    }


def test_an_error_object_may_carry_id_null():
    error = {"code": -32700, "message": "Parse error"}
    assert invalid_message({"jsonrpc": "2.0", "id": None, "error": error}) is None


def _listing(method: str, cursor) -> dict:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"cursor": cursor}}


@pytest.mark.parametrize(
    "after",
    ["Home", "a/b c", "\U0001f600" * 500, '"' * 500, "\\" * 500, "\u2028x", "a\u00e9/" * 100],
    ids=["plain", "space", "astral-500", "quotes-500", "backslashes-500", "line-sep", "accents"],
)
def test_a_resources_list_cursor_names_any_page_path_and_passes_the_gate(after):
    """resources/list pages by the last path listed: any path the page API takes (up to 500
    characters) makes a cursor that decodes to it and that the transport's gate lets through."""
    cursor = encode_cursor(after)
    assert decode_cursor(cursor) == after
    assert cursor_problem(_listing("resources/list", cursor)) is None


@pytest.mark.parametrize(
    "cursor",
    [
        CursorState(offset=200).encode(),  # FastMCP's, for the other lists
        base64.urlsafe_b64encode(b'{"after": ""}').decode(),
        base64.urlsafe_b64encode(b'{"after": 5}').decode(),
        base64.urlsafe_b64encode(b'["after"]').decode(),
        base64.urlsafe_b64encode(('{"after": "%s"}' % ("a" * 501)).encode()).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "\u00e9",
        "not base64!",
        base64.urlsafe_b64encode(b'{"after": "\\ud800"}').decode(),  # review 17: error code 0
        base64.urlsafe_b64encode(b'{"after": "a\\udfffb"}').decode(),
    ],
    ids=[
        *("offset", "empty", "number", "list", "too-long", "not-utf8", "not-ascii", "garbage"),
        *("lone-high-surrogate", "lone-low-surrogate"),
    ],
)
def test_a_resources_list_cursor_this_server_did_not_give_is_refused(cursor):
    with pytest.raises(ValueError):
        decode_cursor(cursor)
    problem = cursor_problem(_listing("resources/list", cursor))
    assert (
        problem["error"]["code"] == -32602
        and "not one this server gave" in problem["error"]["message"]
    )


def test_the_other_lists_keep_fastmcps_cursor():
    assert cursor_problem(_listing("tools/list", CursorState(offset=5).encode())) is None
    assert cursor_problem(_listing("tools/list", encode_cursor("Home")))["error"]["code"] == -32602
