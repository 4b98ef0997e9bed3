"""The handoff's URLs lead only to their own wiki; hostile hosts and return_to are refused."""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest

from app.core import handoff
from app.core.settings import Settings

LOCAL = Settings.from_env({"ROBOT_DATA_DIR": "/tmp/robot-handoff"})
DEPLOYED = Settings.from_env({"PLATFORM_DOMAIN": "robot.wtf", "ROBOT_DATA_DIR": "/srv/data"})

# Each would lead somewhere other than alpha's own pages on the local instance.
HOSTILE_RETURN_TO = [
    None,
    "",
    "/Home",
    "//evil.test/",
    "///evil.test/",
    "http://evil.test/",
    "https://alpha.localhost:8000/",  # another scheme
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://beta.localhost:8000/",  # another wiki
    "http://localhost:8002/app/",  # the apex is not this wiki
    "http://alpha.localhost:8001/mcp",  # alpha's MCP origin, not its pages
    "http://alpha.localhost:9999/",
    "http://alpha.localhost.:8000/",
    "http://alpha.localhost.evil.test:8000/",
    "http://evil.test@alpha.localhost:8000/",
    "http://alpha.localhost:8000@evil.test/",
    "http://alpha.localhost:8000\\@evil.test/",
    "http:\\\\evil.test\\",
    "/\\evil.test/",
    "http://alpha.localhost:8000/\r\nSet-Cookie: x=1",
    "http://alpha.localhost:8000/%0d%0aLocation:%20http://evil.test/\n",
    "http://alpha.localhost:8000/\x00",
    "http://alpha.localhost:8000/ page",
    "http://alpha.localhost:8000/" + "a" * 3000,
    "http://[::1]:8000/",
    "http://127.0.0.1:8000/",
]


@pytest.mark.parametrize("url", HOSTILE_RETURN_TO)
def test_hostile_return_to_is_not_on_the_wiki(url):
    assert handoff.on_wiki(LOCAL, "alpha", url) is None


@pytest.mark.parametrize(
    "settings, url",
    [
        (LOCAL, "http://alpha.localhost:8000/"),
        (LOCAL, "http://alpha.localhost:8000/Some/Page?x=1#top"),
        (LOCAL, "http://ALPHA.localhost:8000/Page"),
        (DEPLOYED, "https://alpha.robot.wtf/Page"),
    ],
)
def test_the_wikis_own_urls_are_kept(settings, url):
    assert handoff.on_wiki(settings, "alpha", url) == url


@pytest.mark.parametrize("url", HOSTILE_RETURN_TO)
def test_urls_built_with_hostile_return_to_lead_home(url):
    for built in (
        handoff.wiki_session_url(LOCAL, "alpha", url),
        handoff.redeem_url(LOCAL, "alpha", "code", url),
    ):
        assert parse_qs(urlsplit(built).query)["return_to"] == ["http://alpha.localhost:8000/"]


def test_wiki_session_url_names_the_host_and_a_known_reason_only():
    url = handoff.wiki_session_url(LOCAL, "alpha", None, handoff.REASON_EXPIRED)
    assert url.startswith("http://localhost:8003/auth/wiki-session?")
    query = parse_qs(urlsplit(url).query)
    assert query["host"] == ["alpha.localhost"] and query["reason"] == ["expired"]
    assert "reason" not in handoff.wiki_session_url(LOCAL, "alpha", None, "<b>made up</b>")


def test_redeem_url_is_on_the_wiki_host():
    url = handoff.redeem_url(DEPLOYED, "alpha", "c0de", "https://alpha.robot.wtf/P")
    assert url == (
        "https://alpha.robot.wtf/-/robot/session?code=c0de&return_to=https%3A%2F%2Falpha.robot.wtf%2FP"
    )


@pytest.mark.parametrize(
    "host",
    [
        None,
        "",
        "localhost",
        "alpha",
        "alpha.localhost:8000",
        "alpha.localhost.",
        "alpha.localhost/x",
        "a.alpha.localhost",
        "www.localhost",  # reserved
        "evil.test",
        "alpha.localhost.evil.test",
        "-bad-.localhost",
        "x" * 300 + ".localhost",
        "alpha.localhost\r\nX: y",
    ],
)
def test_only_wiki_hosts_have_a_slug(host):
    assert handoff.slug_of_wiki_host(LOCAL, host) is None


def test_a_wiki_host_names_its_slug():
    assert handoff.slug_of_wiki_host(LOCAL, "Alpha.Localhost") == "alpha"
