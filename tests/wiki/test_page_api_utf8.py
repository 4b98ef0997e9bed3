"""Every path the page API takes (page paths, rename targets, prefixes, attachment names) that
was no valid UTF-8 is refused with a 400 saying so: Werkzeug decodes the URL with replacement
characters, so `PUT /api/v1/pages/S%E9x` once made the page `S\ufffdx` (fourteenth review)."""

import io
import subprocess

import pytest
from werkzeug.test import Client

from tests.wiki import test_tenancy

wiki = test_tenancy.wiki  # the in-process service with alpha, beta and pub, reused

# Byte sequences that are no UTF-8: Latin-1, a stray continuation byte, a truncated sequence,
# an overlong slash, an encoded surrogate, and bytes UTF-8 never uses.
NOT_UTF8 = ["%E9", "%80", "%E2%82", "%C0%AF", "%ED%A0%80", "%FF%FE"]


@pytest.fixture(scope="module")
def api(wiki):
    """Call alpha's page API with its owner's token: (method, path, **kwargs) -> response."""
    secret = wiki.store.create_token("alpha", test_tenancy.OWNER_A[0], "admin")[1]
    client = Client(wiki.app)

    def call(method, path, **kwargs):
        headers = {"Authorization": f"Bearer {secret}"}
        return client.open(
            path,
            method=method,
            base_url="http://alpha.localhost",
            headers=headers,
            buffered=True,
            **kwargs,
        )

    assert call("PUT", "/api/v1/pages/Doc", json={"content": "# Doc\n"}).status_code in (200, 201)
    upload = call("PUT", "/api/v1/pages/Doc/attachments/a.txt", data=b"a")
    assert upload.status_code in (200, 201)
    return call


def _commits(wiki) -> int:
    repo = wiki.settings.repo_path("alpha")
    out = subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=repo, capture_output=True)
    return int(out.stdout)


def _requests(bad: str) -> list[tuple[str, str, dict]]:
    """(method, URL, request arguments) of each route, naming a path with the bytes `bad`."""
    page = f"/api/v1/pages/S{bad}x"
    return [
        ("GET", page, {}),
        ("PUT", page, {"json": {"content": "x"}}),
        ("PUT", f"/api/v1/pages/notes/{bad}/deep", {"json": {"content": "x"}}),
        ("POST", f"{page}/append", {"json": {"content": "x"}}),
        ("DELETE", page, {}),
        ("POST", f"{page}/rename", {"json": {"to": "Fine"}}),
        ("GET", f"{page}/history", {}),
        ("GET", f"{page}/links", {}),
        ("GET", f"{page}/attachments", {}),
        ("PUT", f"{page}/attachments/a.txt", {"data": b"a"}),
        ("GET", f"/api/v1/pages/Doc/attachments/a{bad}.txt", {}),
        ("PUT", f"/api/v1/pages/Doc/attachments/a{bad}.txt", {"data": b"a"}),
        ("DELETE", f"/api/v1/pages/Doc/attachments/a{bad}.txt", {}),
        ("GET", f"/api/v1/pages?prefix=S{bad}", {}),
        ("GET", f"/api/v1/pages?limit=5&after=S{bad}", {}),
    ]


@pytest.mark.parametrize("bad", NOT_UTF8)
def test_a_path_that_was_no_utf8_is_refused_on_every_route(wiki, api, bad):
    before = _commits(wiki)
    for method, url, kwargs in _requests(bad):
        response = api(method, url, **kwargs)
        assert response.status_code == 400, (method, url, response.get_data(as_text=True))
        assert "not valid UTF-8" in response.json["error"], (method, url, response.json)
    assert _commits(wiki) == before


def test_a_rename_target_holding_a_replacement_character_is_refused(api):
    response = api("POST", "/api/v1/pages/Doc/rename", json={"to": "S\ufffdx"})
    assert response.status_code == 400 and "not valid UTF-8" in response.json["error"]


def test_an_uploaded_file_name_holding_a_replacement_character_is_refused(api):
    data = {"file": (io.BytesIO(b"a"), "a\ufffd.txt")}
    response = api("POST", "/api/v1/pages/Doc/attachments", data=data)
    assert response.status_code == 400 and "not valid UTF-8" in response.json["error"]


def test_valid_utf8_names_still_go(api):
    assert api("PUT", "/api/v1/pages/Caf%C3%A9", json={"content": "x"}).status_code == 201
    assert api("GET", "/api/v1/pages/Caf%C3%A9").json["path"] == "Café"
    assert api("PUT", "/api/v1/pages/Doc/attachments/%E6%97%A5.txt", data=b"a").status_code == 201
    assert api("GET", "/api/v1/pages/Doc/attachments/%E6%97%A5.txt").get_data() == b"a"
    listed = api("GET", "/api/v1/pages?prefix=Caf%C3%A9").json["pages"]
    assert [page["path"] for page in listed] == ["Café"]
