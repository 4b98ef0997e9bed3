"""The access log never holds a one-time code from a URL."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from app.web.access_log import RedactingLogger
from app.web.access_log import redact_codes


@pytest.mark.parametrize(
    "url, logged",
    [
        (
            "GET /-/robot/session?code=abc&return_to=x HTTP/1.1",
            "GET /-/robot/session?code=[redacted]&return_to=x HTTP/1.1",
        ),
        ("/cb?state=s&code=abc", "/cb?state=s&code=[redacted]"),
        ("/cb?CODE=abc#frag", "/cb?CODE=[redacted]#frag"),
        ("/p?code=a&code=b", "/p?code=[redacted]&code=[redacted]"),
        ("/p?postcode=123&zipcode=9", "/p?postcode=123&zipcode=9"),
        ("/code=abc", "/code=abc"),
    ],
)
def test_code_values_are_redacted(url, logged):
    assert redact_codes(url) == logged


def test_the_access_line_holds_no_code():
    logger = RedactingLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/-/robot/session?code=s3cret&return_to=x",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "QUERY_STRING": "code=s3cret&return_to=x",
        "HTTP_REFERER": "http://localhost:8003/auth/wiki-session?code=s3cret",
    }
    response = SimpleNamespace(status="302 FOUND", headers=[], sent=0)
    atoms = logger.atoms(response, SimpleNamespace(headers=[]), environ, datetime.timedelta(0))
    assert "s3cret" not in repr({k: atoms[k] for k in ("r", "q", "f")})
    assert atoms["q"] == "code=[redacted]&return_to=x"
