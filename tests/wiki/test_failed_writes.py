"""A write that fails leaves nothing behind: no staged change for the next writer's commit.

Fourteenth review: a page API write whose commit message held a lone surrogate failed in
git's commit (500) after staging its page; the next writer's commit took that page in under
their own name and message.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from types import SimpleNamespace

import pytest
from werkzeug.test import Client

from app.core.wikis import create_wiki
from tests.wiki.instance import in_process

SLUG = "failing"
HOST = f"{SLUG}.localhost"
OWNER = ("did:plc:failing-owner", "failing.test")


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    made = in_process(tmp_path_factory.mktemp("failing"), [OWNER])
    store = made.platform.store
    create_wiki(made.settings, store, SLUG, OWNER[0], "Failing")
    _, token = store.create_token(SLUG, OWNER[0], "editor")
    yield SimpleNamespace(
        client=Client(made.app),
        auth={"Authorization": f"Bearer {token}"},
        repo=made.settings.repo_path(SLUG),
    )
    made.app.tenancy.close()
    store.close()


def send(wiki, method: str, path: str, raw: bytes | None = None, **kwargs):
    """`method` `path` on the wiki as its editor; `raw` is sent as a JSON body byte for byte."""
    if raw is not None:
        kwargs |= {"data": raw, "content_type": "application/json"}
    return wiki.client.open(
        path, method=method, base_url=f"http://{HOST}", headers=wiki.auth, buffered=True, **kwargs
    )


def git(wiki, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=wiki.repo, capture_output=True, text=True, check=True)
    return done.stdout


def assert_clean(wiki) -> None:
    """Nothing staged, changed or left over in the working tree."""
    assert git(wiki, "status", "--porcelain", "--untracked-files=all") == ""


# A JSON string escape of a surrogate without its pair, as a client sends it.
LONE = "\\ud800"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/api/v1/pages/Surr", f'{{"content": "ok", "message": "m{LONE}"}}'),
        ("PUT", "/api/v1/pages/Surr", f'{{"content": "ok {LONE}"}}'),
        ("PUT", "/api/v1/pages/Surr", f'{{"content": "ok", "extra{LONE}": 1}}'),
        ("PUT", "/api/v1/pages/Surr", '{"content": "ok", "x": ["a", {"b": "\\udfff"}]}'),
        ("POST", "/api/v1/pages/Home/append", f'{{"content": "more", "message": "{LONE}"}}'),
        ("POST", "/api/v1/pages/Home/rename", f'{{"to": "Start", "message": "{LONE}x"}}'),
        ("POST", "/api/v1/pages/Home/rename", f'{{"to": "Start{LONE}"}}'),
        ("PUT", "/api/v1/pages/Surr", '{"content": "ok", "message": "\\uDC80 upper"}'),
    ],
)
def test_a_lone_surrogate_anywhere_in_a_json_body_is_refused(wiki, method, path, body):
    head = git(wiki, "rev-parse", "HEAD")
    answer = send(wiki, method, path, body.encode())
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert "lone surrogate" in answer.json["error"]
    assert git(wiki, "rev-parse", "HEAD") == head
    assert_clean(wiki)


def test_a_surrogate_pair_is_text_and_is_kept(wiki):
    body = json.dumps({"content": "smile \ud83d\ude00", "message": "pair \ud83d\ude00"})
    assert send(wiki, "PUT", "/api/v1/pages/Pair", body.encode()).status_code in (200, 201)
    assert git(wiki, "log", "-1", "--format=%s") == "pair \U0001f600\n"
    assert_clean(wiki)


@pytest.fixture
def failing_commits(wiki):
    """A pre-commit hook that fails: every commit fails after its change was staged."""
    hook = wiki.repo / ".git" / "hooks" / "pre-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\necho refused >&2\nexit 1\n")
    os.chmod(hook, 0o755)
    yield
    hook.unlink()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/api/v1/pages/Staged", {"content": "staged"}),
        ("POST", "/api/v1/pages/Home/append", {"content": "appended"}),
        ("POST", "/api/v1/pages/Home/rename", {"to": "Renamed"}),
        ("DELETE", "/api/v1/pages/Home", None),
        ("PUT", "/api/v1/pages/Home/attachments/a.txt", b"attached"),
    ],
)
def test_a_write_that_fails_part_way_leaves_nothing_for_the_next_commit(
    wiki, failing_commits, method, path, body
):
    head = git(wiki, "rev-parse", "HEAD")
    if isinstance(body, bytes):
        failed = send(wiki, method, path, data=body)
    else:
        failed = send(wiki, method, path, **({"json": body} if body else {}))
    assert failed.status_code >= 400, failed.status_code  # the server's own hook refused
    assert git(wiki, "rev-parse", "HEAD") == head
    assert_clean(wiki)


def test_the_next_writers_commit_holds_only_its_own_change(wiki, failing_commits):
    assert send(wiki, "PUT", "/api/v1/pages/Left", json={"content": "left"}).status_code >= 400
    (wiki.repo / ".git" / "hooks" / "pre-commit").unlink()
    try:
        done = send(wiki, "PUT", "/api/v1/pages/Innocent", json={"content": "innocent"})
        assert done.status_code in (200, 201)
        assert git(wiki, "show", "--name-only", "--format=", "HEAD").split() == ["innocent.md"]
    finally:
        (wiki.repo / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 1\n")
    assert_clean(wiki)


def test_a_save_in_the_editor_that_fails_leaves_nothing_behind(wiki, failing_commits):
    """The same for Otterwiki's own forms: its editor's save commits through GitStorage."""
    form = send(wiki, "GET", "/Edited/edit").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    data = {"content": "edited", "commit": "edit", "csrf_token": csrf}
    head = git(wiki, "rev-parse", "HEAD")
    send(wiki, "POST", "/Edited/save", data=data)
    assert git(wiki, "rev-parse", "HEAD") == head
    assert_clean(wiki)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16", "utf-32", "latin-1"])
def test_a_json_body_in_another_encoding_than_utf8_is_refused(wiki, encoding):
    """Fifteenth review: a UTF-16 body got past the check for surrogate escapes (json.loads
    reads UTF-16 and -32 too), and its lone surrogate failed the commit (500)."""
    body = '{"content": "caf\u00e9", "message": "m\\ud800x"}'.encode(encoding)
    head = git(wiki, "rev-parse", "HEAD")
    answer = send(wiki, "PUT", "/api/v1/pages/Encoded", body)
    assert answer.status_code == 400 and "not UTF-8" in answer.json["error"]
    assert git(wiki, "rev-parse", "HEAD") == head
    assert_clean(wiki)
