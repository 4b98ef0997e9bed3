"""return_to leads only to the platform's own hosts: the apex or a wiki host, never elsewhere."""

from __future__ import annotations

import pytest

from app.core.redirects import safe_return_to
from app.core.settings import Settings

LOCAL = Settings.from_env({"ROBOT_DATA_DIR": "/tmp/robot-redirects"})
DEPLOYED = Settings.from_env({"PLATFORM_DOMAIN": "robot.wtf", "ROBOT_DATA_DIR": "/srv/data"})
DEFAULT = "DEFAULT"


@pytest.mark.parametrize(
    "settings, url",
    [
        (LOCAL, "http://localhost:8002/app/"),
        (LOCAL, "http://localhost:8003/authorize?client_id=x&state=y"),
        (LOCAL, "http://alpha.localhost:8000/Home"),
        (LOCAL, "http://alpha.localhost:8001/mcp"),
        (DEPLOYED, "https://robot.wtf/app/"),
        (DEPLOYED, "https://alpha.robot.wtf/Some/Page?x=1#top"),
        (DEPLOYED, "https://alpha.robot.wtf:443/"),
    ],
)
def test_own_hosts_are_kept(settings, url):
    assert safe_return_to(settings, url, DEFAULT) == url


@pytest.mark.parametrize(
    "settings, url",
    [
        (LOCAL, None),
        (LOCAL, ""),
        (LOCAL, "/app/"),  # relative: which host would it be on?
        (LOCAL, "//evil.test/"),
        (LOCAL, "http://evil.test/"),
        (LOCAL, "http://localhost.evil.test:8002/"),
        (LOCAL, "http://evillocalhost:8002/"),
        (LOCAL, "http://localhost:8002@evil.test/"),
        (LOCAL, "http://user@localhost:8002/"),
        (LOCAL, "http://localhost:8002\\@evil.test/"),
        (LOCAL, "http:\\\\evil.test"),
        (LOCAL, "http://localhost:9999/"),  # not one of the services
        (LOCAL, "http://localhost:notaport/"),
        (LOCAL, "https://localhost:8002/"),  # not the platform's scheme
        (LOCAL, "javascript:alert(1)//localhost:8002/"),
        (LOCAL, "data:text/html,x"),
        (LOCAL, "http://www.localhost:8000/"),  # reserved: no wiki can be there
        (LOCAL, "http://a.b.localhost:8000/"),
        (LOCAL, "http://alpha.localhost.:8000/"),
        (LOCAL, " http://localhost:8002/"),
        (LOCAL, "http://localhost:8002/\n"),
        (LOCAL, "http://local\thost:8002/"),
        (LOCAL, "http://localhost:8002/" + "x" * 3000),
        (DEPLOYED, "http://robot.wtf/"),  # downgrade to http
        (DEPLOYED, "https://robot.wtf:8443/"),
        (DEPLOYED, "https://robot.wtf.evil.test/"),
        (DEPLOYED, "https://evil.test/?https://robot.wtf/"),
        (DEPLOYED, "https://[::1]/"),
        (DEPLOYED, "https://127.0.0.1/"),
    ],
)
def test_anything_else_becomes_the_default(settings, url):
    assert safe_return_to(settings, url, DEFAULT) == DEFAULT
