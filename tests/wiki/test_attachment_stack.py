"""Attachments over the real stack (gunicorn in front): chunked and multipart bodies, and a
cookie-borne upload posted from another wiki's page refused while a Bearer token works."""

import http.client
import json
import re
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.core.locks import wiki_write_lock
from app.core.store import Store
from app.core.usage import measure
from app.core.wikis import create_wiki
from app.web.session_cookie import cookie_name
from app.wiki.otterwiki.config import FORM_ENVELOPE_BYTES
from app.wiki.page_api import MAX_REQUEST_BYTES

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
    client.token = token
    yield client, cookie
    store.close()


def head(stack) -> str:
    repo = stack.settings.repo_path(SLUG)
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    return done.stdout.strip()


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


def send_chunked(stack, token, method, path, body: bytes, content_type=None):
    """(status, JSON answer) of one request whose body is sent with Transfer-Encoding: chunked,
    written on a raw socket by a thread of its own: gunicorn may answer (and stop reading)
    before the last chunk, and the answer must still be read."""
    sock = socket.create_connection(("127.0.0.1", stack.port("otterwiki")), timeout=60)
    head = [
        f"{method} {path} HTTP/1.1",
        f"Host: {stack.settings.wiki_host(SLUG)}",
        f"Authorization: Bearer {token}",
        "Transfer-Encoding: chunked",
        "Connection: close",
    ]
    if content_type:
        head.append(f"Content-Type: {content_type}")

    def write():
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            for start in range(0, len(body), 64 * 1024):
                chunk = body[start : start + 64 * 1024]
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before the whole body was sent

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        answer = http.client.HTTPResponse(sock, method=method)
        answer.begin()
        status, text = answer.status, answer.read()
    finally:
        writer.join(timeout=60)
        sock.close()
    return status, json.loads(text)


def multipart(fields: list[tuple[str, str | None, bytes]]) -> tuple[str, bytes]:
    """(Content-Type, body) of a multipart form: (field, file name or None, value) each."""
    boundary = "robot-test-boundary-7d1f"
    body = b""
    for field, filename, value in fields:
        disposition = f'form-data; name="{field}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += value + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def test_chunked_bodies_at_their_caps_are_taken(stack, wiki):
    client, _ = wiki
    cap = stack.settings.max_attachment_bytes
    url = "/api/v1/pages/Doc/attachments/full.bin"
    status, answer = send_chunked(stack, client.token, "PUT", url, b"f" * cap)
    assert status == 201 and answer["size"] == cap
    kind, body = multipart([("file", "full2.bin", b"g" * cap), ("message", None, b"two")])
    url = "/api/v1/pages/Doc/attachments"
    status, answer = send_chunked(stack, client.token, "POST", url, body, kind)
    assert status == 201 and answer["attachments"][0]["size"] == cap


def _over_the_caps(cap: int) -> dict:
    """Each body the page API reads, one byte (or far) past its cap, sent chunked."""
    kind, one_byte_over = multipart([("file", "over.bin", b"o" * (cap + 1))])
    _, envelope_over = multipart([("file", "over.bin", b"o" * (cap + FORM_ENVELOPE_BYTES))])
    # Valid JSON even where it would be cut: the spaces after the object are what is cut.
    page = json.dumps({"content": "# Replaced\n"}).encode()
    rename = json.dumps({"to": "Elsewhere"}).encode()
    padded = MAX_REQUEST_BYTES + 1
    return {
        "raw-one-byte": ("PUT", "Doc/attachments/blob.bin", b"r" * (cap + 1), None),
        "raw-far": ("PUT", "Doc/attachments/blob.bin", b"r" * (cap + 300_000), None),
        "raw-new": ("PUT", "Doc/attachments/trunc.bin", b"r" * (cap + 1), None),
        "multipart-file": ("POST", "Doc/attachments", one_byte_over, kind),
        "multipart-envelope": ("POST", "Doc/attachments", envelope_over, kind),
        "json-write": ("PUT", "Doc", page.ljust(padded), "application/json"),
        "json-rename": ("POST", "Doc/rename", rename.ljust(padded), "application/json"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "raw-one-byte",
        "raw-far",
        "raw-new",
        "multipart-file",
        "multipart-envelope",
        "json-write",
        "json-rename",
    ],
)
def test_chunked_bodies_past_their_caps_are_refused_not_cut(stack, wiki, case):
    # The reviewer's case: a chunked raw upload was cut to the cap and stored (201, replacing
    # the file there). Every body the page API reads is refused whole instead, nothing written.
    client, _ = wiki
    client.put("/api/v1/pages/Doc/attachments/blob.bin", content=BINARY)
    method, path, body, kind = _over_the_caps(stack.settings.max_attachment_bytes)[case]
    before = head(stack)
    status, answer = send_chunked(stack, client.token, method, f"/api/v1/pages/{path}", body, kind)
    assert status == 413, answer
    assert "at most" in answer["error"] and answer["max_bytes"]
    assert head(stack) == before
    assert client.get("/api/v1/pages/Doc/attachments/blob.bin").content == BINARY
    assert client.get("/api/v1/pages/Doc/attachments/trunc.bin").status_code == 404
    assert client.get("/api/v1/pages/Doc").json()["content"] == "# Doc\n"


@pytest.mark.parametrize("name", ["a%2Fb.txt", "a%5Cb.txt", "..%2F..%2Fsettings.cfg", "%2e%2e"])
def test_encoded_separators_in_a_name_are_named_through_gunicorn(stack, wiki, name):
    # gunicorn decodes %2F in PATH_INFO: the raw URI is what tells an attachment name apart.
    client, _ = wiki
    before = head(stack)
    put = client.put(f"/api/v1/pages/Doc/attachments/{name}", content=b"x")
    assert put.status_code == 400, put.text
    assert "slashes" in put.json()["error"] or "not allowed" in put.json()["error"]
    assert head(stack) == before


def test_a_full_wiki_refuses_what_adds_but_takes_renames_and_deletions(stack, wiki):
    """Tenth review: uploads, each under its cap, could add up without end. A wiki whose files
    already add up to ROBOT_WIKI_MAX_BYTES refuses writes that add (507) until room is made;
    renames and deletions still go through."""
    client, _ = wiki
    assert client.put("/api/v1/pages/Doc/attachments/kept.bin", content=BINARY).status_code == 201
    store = Store(stack.settings.database_url)
    try:
        store.record_usage(SLUG, 3, stack.settings.wiki_max_bytes)
        upload = client.put("/api/v1/pages/Doc/attachments/more.bin", content=BINARY)
        assert upload.status_code == 507, upload.text
        assert "delete attachments or pages to make room" in upload.json()["error"]
        files = {"file": ("more.bin", BINARY)}
        assert client.post("/api/v1/pages/Doc/attachments", files=files).status_code == 507
        # Twelfth review: 200 appends of 3.9 KB each went on growing a full wiki. Every
        # write that adds a page's text or a file is refused now, whatever its size.
        for method, path, body in (
            ("PUT", "/api/v1/pages/Small", {"content": "# Small\n"}),
            ("POST", "/api/v1/pages/Home/append", {"content": "more\n"}),
        ):
            small = client.request(method, path, json=body)
            assert small.status_code == 507, small.text
        renamed = client.post("/api/v1/pages/Home/rename", json={"to": "Start"})
        assert renamed.status_code == 200, renamed.text
        assert client.delete("/api/v1/pages/Doc/attachments/kept.bin").status_code == 200
    finally:
        store.record_usage(SLUG, 3, 0)
        store.close()
    assert client.put("/api/v1/pages/Doc/attachments/more.bin", content=BINARY).status_code == 201


def revert(client, revision: str):
    """Revert commit `revision` through Otterwiki's form (its CSRF token first)."""
    form = client.get(f"/-/revert/{revision}")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.text)
    data = {"csrf_token": token.group(1) if token else "", "message": "revert"}
    return client.post(f"/-/revert/{revision}", data=data)


def test_a_revert_is_refused_when_what_it_brings_back_does_not_fit(stack, wiki):
    """Twelfth review: a push adding 60 MB of compressible data and one removing it, then a
    revert in the UI of the removal, put 60 MB into a wiki capped at 5 MB: only a full wiki
    refused reverts. A revert is measured now: what the reverted commit removed comes back."""
    client, _ = wiki
    assert client.put("/api/v1/pages/Doc/attachments/big.bin", content=BINARY).status_code == 201
    removed = client.delete("/api/v1/pages/Doc/attachments/big.bin")
    assert removed.status_code == 200, removed.text
    removal = head(stack)
    store = Store(stack.settings.database_url)
    try:
        # Room for all but one byte of it: the revert would not fit.
        store.record_usage(SLUG, 3, stack.settings.wiki_max_bytes - len(BINARY) + 1)
        refused = revert(client, removal)
        assert refused.status_code == 507, refused.text
        assert f"would bring back {len(BINARY)} bytes" in refused.text
        assert head(stack) == removal
        # A revert that frees room goes through even in a full wiki: undoing the upload of
        # another file.
        store.record_usage(SLUG, 3, 0)
        assert client.put("/api/v1/pages/Doc/attachments/undo.bin", content=BINARY).status_code
        upload = head(stack)
        store.record_usage(SLUG, 3, stack.settings.wiki_max_bytes)
        freed = revert(client, upload)
        assert freed.status_code in (200, 302), freed.text
        assert head(stack) != upload
        assert client.get("/Doc/a/undo.bin").status_code == 404
        # With room, the refused revert goes through.
        store.record_usage(SLUG, 3, 0)
        taken = revert(client, removal)
        assert taken.status_code in (200, 302), taken.text
        assert client.get("/Doc/a/big.bin").content == BINARY
    finally:
        store.record_usage(SLUG, 3, 0)
        store.close()


def test_uploads_sent_at_once_cannot_each_take_the_same_room(stack, wiki):
    """Thirteenth session's note: uploads sent together just under the cap, each fitting as
    last measured, went past it together. An upload reserves its body's length before it runs:
    of four that fit only one at a time, one goes through, the others are told 507 at once.
    (The wiki's write lock is held meanwhile, so none is measured before all have arrived.)"""
    client, _ = wiki
    store = Store(stack.settings.database_url)
    try:
        store.record_usage(SLUG, 3, stack.settings.wiki_max_bytes - len(BINARY) * 3 // 2)
        with ThreadPoolExecutor(4) as pool:
            with wiki_write_lock(stack.settings.wiki_dir(SLUG)):
                uploads = [
                    pool.submit(
                        client.put, f"/api/v1/pages/Doc/attachments/now{n}.bin", content=BINARY
                    )
                    for n in range(4)
                ]
                deadline = time.monotonic() + 30
                while sum(u.done() for u in uploads) < 3 and time.monotonic() < deadline:
                    time.sleep(0.05)
                refused = [u.result().status_code for u in uploads if u.done()]
            statuses = sorted(u.result(timeout=30).status_code for u in uploads)
        assert refused == [507, 507, 507] and statuses == [201, 507, 507, 507], statuses
        # Measured after the upload: the real size, neither the figure set above nor reserved.
        assert store.find_wiki(SLUG).size_bytes < stack.settings.wiki_max_bytes // 2
    finally:
        store.record_usage(SLUG, 3, 0)
        store.close()


def test_a_revert_that_fails_gives_back_the_room_it_reserved(stack, wiki):
    """A revert reserves what it brings back before it runs; one that then failed (a stale
    form's CSRF token, a conflict) left its wiki's recorded size that much too large until the
    next write. What no commit took is given back."""
    client, _ = wiki
    name = "/api/v1/pages/Doc/attachments/failing.bin"
    assert client.put(name, content=BINARY).status_code == 201
    assert client.delete(name).status_code == 200
    removal = head(stack)
    files = measure(stack.settings.repo_path(SLUG)).size_bytes
    store = Store(stack.settings.database_url)
    try:
        # Recorded above and below what the files hold: given back to the former, and
        # (fifteenth review) never under the latter, where a release after another write's
        # measurement had put it, and the next upload passed the cap.
        for recorded in (files + 1000, 0):
            store.record_usage(SLUG, 3, recorded)
            for data in ({"message": "revert"}, {"csrf_token": "stale", "message": "revert"}):
                failed = client.post(f"/-/revert/{removal}", data=data)
                assert failed.status_code == 400, failed.status_code
                assert head(stack) == removal
                assert store.find_wiki(SLUG).size_bytes == max(recorded, files)
    finally:
        store.record_usage(SLUG, 3, 0)
        store.close()


def test_reverts_sent_at_once_cannot_each_take_the_same_room(stack, wiki):
    """Thirteenth review: four reverts sent together each fitted as last measured, and put a
    wiki at 12 MB past its 5 MB cap. What a revert brings back is reserved in the wiki's
    recorded size before it runs: of four that fit only one at a time, one goes through."""
    client, _ = wiki
    removals = []
    for n in range(4):
        name = f"/api/v1/pages/Doc/attachments/many{n}.bin"
        assert client.put(name, content=BINARY).status_code == 201
        assert client.delete(name).status_code == 200
        removals.append(head(stack))
    forms = {rev: client.get(f"/-/revert/{rev}").text for rev in removals}
    tokens = {
        rev: re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
        for rev, form in forms.items()
    }
    store = Store(stack.settings.database_url)
    try:
        store.record_usage(SLUG, 3, stack.settings.wiki_max_bytes - len(BINARY) * 3 // 2)

        def revert_at_once(rev):
            data = {"csrf_token": tokens[rev], "message": "revert"}
            return client.post(f"/-/revert/{rev}", data=data).status_code

        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = sorted(pool.map(revert_at_once, removals))
        assert statuses.count(507) == 3 and statuses[0] in (200, 302), statuses
    finally:
        store.record_usage(SLUG, 3, 0)
        store.close()
