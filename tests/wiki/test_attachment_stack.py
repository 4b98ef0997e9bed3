"""Attachments over the real stack (gunicorn in front): chunked and multipart bodies, and a
cookie-borne upload posted from another wiki's page refused while a Bearer token works."""

import subprocess

import pytest

from app.core.store import Store
from app.core.wikis import create_wiki
from app.web.session_cookie import cookie_name

pytestmark = pytest.mark.stack

OWNER = ("did:plc:atts-owner", "atts-owner.test")
SLUG, OTHER = "atts-alpha", "atts-beta"
BINARY = bytes(range(256)) * 64


@pytest.fixture(scope="module")
def wiki(stack):
    store = Store(stack.settings.database_url)
    store.upsert_user(*OWNER)
    for slug in (SLUG, OTHER):
        create_wiki(stack.settings, store, slug, OWNER[0])
    token = store.create_token(SLUG, OWNER[0], "admin")[1]
    cookie = store.create_session(OWNER[0], stack.settings.wiki_host(SLUG), 600)[1]
    client = stack.client("otterwiki", host=stack.settings.wiki_host(SLUG))
    client.headers["Authorization"] = f"Bearer {token}"
    assert client.put("/api/v1/pages/Doc", json={"content": "# Doc\n"}).status_code == 201
    yield client, cookie
    store.close()


def head(stack) -> str:
    repo = stack.settings.repo_path(SLUG)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True).stdout


def test_chunked_raw_upload_reads_back_identical(wiki):
    client, _ = wiki

    def chunks():
        for start in range(0, len(BINARY), 1000):
            yield BINARY[start : start + 1000]

    put = client.put("/api/v1/pages/Doc/attachments/blob.bin", content=chunks())
    assert put.status_code == 201, put.text
    assert put.json()["size"] == len(BINARY)
    assert client.get("/api/v1/pages/Doc/attachments/blob.bin").content == BINARY


def test_multipart_upload_with_bearer(wiki):
    client, _ = wiki
    files = [("file", ("a.txt", b"one\n")), ("file", ("b.bin", BINARY))]
    posted = client.post("/api/v1/pages/Doc/attachments", files=files, data={"message": "two"})
    assert posted.status_code == 201, posted.text
    assert [a["name"] for a in posted.json()["attachments"]] == ["a.txt", "b.bin"]
    assert client.get("/api/v1/pages/Doc/attachments/b.bin").content == BINARY


def test_cookie_upload_from_another_wiki_is_refused(stack, wiki):
    _, cookie = wiki
    browser = stack.client("otterwiki", host=stack.settings.wiki_host(SLUG))
    browser.headers["Cookie"] = f"{cookie_name(stack.settings)}={cookie}"
    files = {"file": ("x.html", b"<script>alert(1)</script>")}
    before = head(stack)
    other = {"Origin": stack.settings.wiki_url(OTHER).rstrip("/"), "Sec-Fetch-Site": "same-site"}
    refused = browser.post("/api/v1/pages/Doc/attachments", files=files, headers=other)
    assert refused.status_code == 403 and "cookie" in refused.json()["error"]
    assert head(stack) == before
    own = {"Origin": stack.settings.wiki_url(SLUG).rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    allowed = browser.post("/api/v1/pages/Doc/attachments", files=files, headers=own)
    assert allowed.status_code == 201, allowed.text
