"""Files an agent uploads through the page API never run as pages: headless chromium opens them
from the wiki's own origin, signed in, and their scripts stay dead under the attachment CSP."""

import pytest

from app.core.store import Store
from app.core.wikis import create_wiki
from tests.browser import Browser

pytestmark = pytest.mark.stack

OWNER = ("did:plc:attb-owner", "attb-owner.test")
SLUG = "attb"
# Each file's script marks the document; a file whose script ran carries the mark.
MARK = "document.documentElement.setAttribute('data-ran', 'yes')"
FILES = {
    "evil.html": f"<!doctype html><p id=shown>evil</p><script>{MARK}</script>"
    f'<img src=x onerror="{MARK}">',
    "evil.svg": f'<svg xmlns="http://www.w3.org/2000/svg" onload="{MARK}">'
    f'<script>{MARK}</script><rect id="shown" width="10" height="10"/></svg>',
}


@pytest.fixture(scope="module")
def site(stack):
    if stack.env.get("ROBOT_DB_URL"):
        pytest.skip("the browser runs on the SQLite stack only")
    store = Store(stack.settings.database_url)
    store.upsert_user(*OWNER)
    create_wiki(stack.settings, store, SLUG, OWNER[0])
    token = store.create_token(SLUG, OWNER[0], "editor")[1]
    store.close()
    api = stack.client("otterwiki", host=stack.settings.wiki_host(SLUG))
    api.headers["Authorization"] = f"Bearer {token}"
    assert api.put("/api/v1/pages/Files", json={"content": "# Files\n"}).status_code == 201
    for name, text in FILES.items():
        put = api.put(f"/api/v1/pages/Files/attachments/{name}", content=text.encode())
        assert put.status_code == 201, put.text
    browser = Browser()
    origin = f"http://{stack.settings.wiki_host(SLUG)}:{stack.port('otterwiki')}"
    browser.get(origin + "/healthz")
    browser.add_cookie("robot_session", stack.browser_session(OWNER[0], f"{SLUG}.localhost"))
    yield browser, origin
    browser.close()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/pages/Files/attachments/evil.html",
        "/api/v1/pages/Files/attachments/evil.svg",
        "/Files/a/evil.svg",
    ],
)
def test_uploaded_markup_is_shown_but_its_scripts_never_run(site, path):
    browser, origin = site
    browser.get(origin + path)
    assert browser.url == origin + path
    # The document is the upload itself, loaded whole (its element is there) ...
    assert browser.script("return document.getElementById('shown') !== null;")
    # ... and by the time it has loaded, an inline script or onload handler would have run.
    assert browser.script("return document.documentElement.getAttribute('data-ran');") is None
