"""Blocked routes stay blocked under every spelling, on the real gunicorn stack.

Requests go out as raw request lines (http.client, `skip_host`), so no client normalises the
path before gunicorn and Werkzeug see it: whatever route Flask would run decides.
"""

import http.client
import re
import sqlite3

import pytest

from app.core.store import Store
from app.core.wikis import create_wiki
from app.wiki.otterwiki.preferences import is_platform_only

pytestmark = pytest.mark.stack

OWNER = ("did:plc:routes-owner", "routes-owner.test")
SLUG = "routes-alpha"
# A blocked route, and text only its view would send if it ran (a form field, a JSON key).
BLOCKED = {
    "/-/admin/user_management": 'name="update_permissions"',
    "/-/admin/mail_preferences": 'name="mail_server"',
    "/-/admin/repository_management": 'name="git_remote_pull_url"',
    "/-/user/1": 'name="delete"',
    "/-/register": 'name="password1"',
    "/-/lost_password": 'name="email"',
    "/-/housekeeping/security-check": '"passed"',
    "/-/api/v1/pull/abc": "webhook",
    "/.git/info/refs": "service=",
}
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT")


def spellings(path: str) -> list[str]:
    """`path` spelled in the ways a client can say it without changing the route it names."""
    head, _, last = path.rpartition("/")
    first = path.split("/")[1]
    encoded = first.replace("-", "%2D").replace(".", "%2E")
    return [
        path,
        "/" + path,
        "///" + path.lstrip("/"),
        f"{head}//{last}",
        path.replace("/", "//"),
        path + "/",
        path + "//",
        path + "?x=1",
        "/." + path,
        path.replace("/", "/./"),
        f"/x/..{path}",
        f"{head}/x/../{last}",
        f"{head}/%2E/{last}",
        f"{head}%2F{last}",
        f"{head}%2f{last}",
        "/%2F" + path.lstrip("/"),
        "/" + encoded + path[len(first) + 1 :],
        re.sub("[a-z]", lambda m: f"%{ord(m.group()):02X}", path, count=3),
        re.sub("[a-z]", lambda m: f"%{ord(m.group()):02x}", path),
        f"{head}%252F{last}",
        path.upper(),
        f"{head}/{last.capitalize()}",
        path + ";x=1",
        f"{head};x/{last}",
        path + "%00",
        path + "%20",
    ]


@pytest.fixture(scope="module")
def world(stack):
    store = Store(stack.settings.database_url)
    store.upsert_user(*OWNER)
    create_wiki(stack.settings, store, SLUG, OWNER[0])
    token = store.create_token(SLUG, OWNER[0], "admin")[1]
    yield token
    store.close()


def send(stack, token, method, target, body=b"", headers=()):
    """Send one raw request line to the wiki service; return (status, headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.port("otterwiki"), timeout=30)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", stack.settings.wiki_host(SLUG))
        connection.putheader("Authorization", f"Bearer {token}")
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        return response.status, response, text
    finally:
        connection.close()


def assert_leads_nowhere(stack, token, method, target, marker):
    status, response, text = send(stack, token, method, target)
    if 300 <= status < 400:  # a redirect Werkzeug issues must lead nowhere either
        location = response.getheader("Location", "")
        target = re.sub(r"^https?://[^/]+", "", location)
        status, response, text = send(stack, token, "GET", target)
    if method == "OPTIONS" and status == 200:
        # Flask's automatic OPTIONS answer of a route that is not blocked (a page whose name
        # merely looks like the route): it runs no view and says only which methods exist.
        assert text == "" and marker not in text, (target, text[:300])
        return
    assert 400 <= status < 500, (method, target, status, text[:300])
    assert marker not in text, (method, target, status)


@pytest.mark.parametrize("path", sorted(BLOCKED))
def test_blocked_route_answers_4xx_under_every_spelling(stack, world, path):
    for target in spellings(path):
        assert_leads_nowhere(stack, world, "GET", target, BLOCKED[path])


@pytest.mark.parametrize("method", METHODS)
def test_admin_route_is_blocked_for_every_method_and_spelling(stack, world, method):
    path = "/-/admin/user_management"
    for target in spellings(path):
        assert_leads_nowhere(stack, world, method, target, BLOCKED[path])


def test_double_slash_admin_route_is_404_for_the_wiki_admin(stack, world):
    """The issue's example: `//-/admin/user_management` ran Otterwiki's view (200)."""
    status, _, text = send(stack, world, "GET", "//-/admin/user_management")
    assert status == 404 and "managed by the platform" in text
    assert f'/app/wiki/{SLUG}"' in text  # the wiki's settings page, where it is managed


def _csrf(stack, token):
    status, response, text = send(stack, token, "GET", "/-/admin")
    assert status == 200, text[:300]
    cookie = response.getheader("Set-Cookie").split(";")[0]
    return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1), cookie


def test_git_pull_url_cannot_be_saved_through_any_spelling(stack, world):
    csrf, cookie = _csrf(stack, world)
    form = (
        f"csrf_token={csrf}&git_remote_pull_enabled=True"
        "&git_remote_pull_url=git%40example.org%3Aother%2Frepo.git&update_preferences=1"
    ).encode()
    headers = (("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded"))
    for target in spellings("/-/admin/repository_management"):
        status, _, text = send(stack, world, "POST", target, form, headers)
        assert status < 500, (target, status, text[:300])
    names = _preference_names(stack)
    assert not [name for name in names if is_platform_only(name)], names


def _preference_names(stack) -> list[str]:
    with sqlite3.connect(stack.settings.wiki_db_path(SLUG)) as db:
        return [row[0] for row in db.execute("SELECT name FROM preferences")]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 200),
        ("/Home", 200),
        ("/-/admin", 200),
        ("/-/admin/content_and_editing", 200),
        ("/-/changelog", 200),
        ("/-/index", 200),
        ("/Home/history", 200),
        ("/static/css/otterwiki.css", 200),
        ("/api/v1/pages", 200),
        ("/healthz", 200),
        ("/-/login", 302),
        ("/-/logout", 302),
    ],
)
def test_allowed_routes_keep_working(stack, world, path, status):
    assert send(stack, world, "GET", path)[0] == status


def test_no_spelling_of_a_post_to_permissions_stores_anything(stack, world):
    """Otterwiki's Permissions and Registration form said "Preferences updated" and changed
    nothing (the platform's roles decide): its page is read-only, and no spelling of a post
    reaches its view or stores anything."""
    csrf, cookie = _csrf(stack, world)
    form = f"csrf_token={csrf}&READ_access=ADMIN&WRITE_access=ADMIN&ATTACHMENT_access=ADMIN"
    headers = (("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded"))
    status, _, text = send(
        stack, world, "POST", "//-/admin/permissions_and_registration", form.encode(), headers
    )
    assert status == 405 and "Nothing was changed" in text and f"/app/wiki/{SLUG}" in text
    for target in spellings("/-/admin/permissions_and_registration"):
        status, _, text = send(stack, world, "POST", target, form.encode(), headers)
        assert 300 <= status < 500, (target, status, text[:300])
    names = _preference_names(stack)
    assert not {"READ_ACCESS", "WRITE_ACCESS", "ATTACHMENT_ACCESS"} & set(names), names
    status, _, text = send(stack, world, "GET", "/-/admin/permissions_and_registration")
    assert status == 200 and "decided by the platform" in text and "<select" not in text
