"""The landing page, the dashboard and its create form: bad input is a message on the page, a
4xx status, the user's input kept, and nothing changed."""

from __future__ import annotations

import re

import pytest

from tests.manage.conftest import field_errors
from tests.manage.conftest import message


def test_landing_says_what_robot_is_and_offers_sign_in(stranger, platform):
    response = stranger.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "over MCP" in page
    assert f'href="{platform.settings.login_url(return_to=platform.settings.dashboard_url)}"' in (
        page.replace("&amp;", "&")
    )
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "form-action 'self' http://localhost:8003" in policy
    assert "<script>" not in page and " on" + "click" not in page


def test_landing_sends_a_signed_in_person_to_the_dashboard(alice):
    response = alice.get("/")
    assert response.status_code == 303 and response.location == "/app/"


@pytest.mark.parametrize("path", ["/app/", "/app/account", "/app/wiki/alpha"])
def test_pages_ask_a_stranger_to_sign_in_and_come_back(stranger, path):
    response = stranger.get(path)
    assert response.status_code == 303
    assert "/auth/login?return_to=http%3A%2F%2Flocalhost%3A8002%2Fapp%2F" in response.location


def test_dashboard_lists_my_wikis_and_shared_ones_with_my_role(bob, alpha, platform):
    platform.store.update_wiki("gamma", is_public=True)
    page = bob.get("/app/").get_data(as_text=True)
    shared = page.split('id="shared-wikis"')[1]
    assert "Alpha notes" in shared and '<td class="role">editor</td>' in shared
    assert "Gamma" not in page  # public, but Bob is not a member
    assert 'href="http://alpha.localhost:8000/"' in shared and "/app/wiki/alpha" in shared
    assert "You have no wiki yet" in page


def test_dashboard_shows_usage_for_humans(alice, alpha, platform):
    page = alice.get("/app/").get_data(as_text=True)
    wiki = platform.store.get_wiki("alpha")
    size = re.search(r"<td>([\d.]+ (?:Bytes|kB))</td>", page).group(1)
    assert wiki.size_bytes > 0 and size.split()[0] != "0" and "UTC</td>" in page


def test_create_a_wiki_lands_on_its_settings(alice, platform, people):
    response = alice.post("/app/wikis", {"slug": "notes", "display_name": "My notes"})
    assert response.status_code == 303 and response.location == "/app/wiki/notes"
    wiki = platform.store.get_wiki("notes")
    assert wiki.owner_did == alice.platform.store.find_user(people[0][0]).did
    assert wiki.display_name == "My notes" and wiki.is_public is False
    assert "is ready" in alice.get("/app/wiki/notes").get_data(as_text=True)


def test_create_a_public_wiki(alice, platform, people):
    alice.post("/app/wikis", {"slug": "open-notes", "visibility": "public"})
    assert platform.store.get_wiki("open-notes").is_public is True


@pytest.mark.parametrize(
    ("slug", "status", "says"),
    [
        ("alpha", 409, "already exists"),
        ("admin", 400, "is reserved"),
        ("robot-support", 400, "would pass for the platform"),
        ("No Spaces!", 400, "invalid slug"),
        ("ab", 400, "invalid slug"),
        ("a--b", 400, "no double hyphens"),
        ("", 400, "slug is required"),
    ],
)
def test_create_refuses_a_bad_slug_next_to_the_field(alice, alpha, platform, slug, status, says):
    before = platform.store.list_wikis()
    response = alice.post("/app/wikis", {"slug": slug, "display_name": "Kept name"})
    assert response.status_code == status and says in field_errors(response)["slug"]
    assert 'value="Kept name"' in response.get_data(as_text=True)
    assert platform.store.list_wikis() == before


def test_create_refuses_a_long_display_name_next_to_the_field(alice, platform, people):
    response = alice.post("/app/wikis", {"slug": "fresh", "display_name": "x" * 101})
    assert response.status_code == 400 and "longer than" in field_errors(response)["display_name"]
    assert platform.store.find_wiki("fresh") is None


@pytest.mark.parametrize(
    ("refusal", "status", "says"),
    [
        ({"csrf": None}, 400, "nothing was changed"),
        ({"csrf": "forged"}, 400, "nothing was changed"),
        ({"csrf": "IjEyMyI.ZZZZ.abc"}, 400, "nothing was changed"),
        ({"csrf": "stale"}, 400, "out of date"),
        ({"origin": None}, 403, "cross-site request refused"),
        ({"origin": "http://evil.localhost:8000"}, 403, "cross-site request refused"),
        ({"origin": "null"}, 403, "cross-site request refused"),
    ],
)
def test_a_forged_or_stale_form_changes_nothing(alice, platform, people, refusal, status, says):
    if refusal.get("csrf") == "stale":  # the page was loaded before its form cookie expired
        refusal = {"csrf": alice.token()}
        alice.client.delete_cookie("robot_app", domain="localhost")
    response = alice.post("/app/wikis", {"slug": "fresh"}, **refusal)
    assert response.status_code == status and says in message(response)
    assert platform.store.find_wiki("fresh") is None


@pytest.mark.parametrize(
    ("slug", "available", "says"),
    [("fresh", True, None), ("alpha", False, "already exists"), ("www", False, "reserved")],
)
def test_check_slug_answers_as_the_user_types(alice, alpha, slug, available, says):
    answer = alice.get(f"/app/check-slug?slug={slug}").json
    assert answer["available"] is available
    assert (answer["problem"] is None) if says is None else (says in answer["problem"])


def test_user_written_names_are_escaped(alice, platform, people):
    alice.post("/app/wikis", {"slug": "xss", "display_name": "<img src=x onerror=alert(1)>"})
    page = alice.get("/app/").get_data(as_text=True)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


@pytest.mark.parametrize("path", ["/app/nothing-here", "/app/wiki/alpha/nothing"])
def test_unknown_page_under_app_is_a_404_page(alice, path):
    response = alice.get(path)
    assert response.status_code == 404 and "there is no page" in message(response)


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
@pytest.mark.parametrize("path", ["/", "/app/", "/app/account", "/app/wiki/alpha"])
def test_a_page_asked_with_an_odd_method_answers_a_405_page(alice, alpha, method, path):
    """Found by review: PUT, DELETE and PATCH on the pages answered JSON."""
    response = getattr(alice.client, method)(path)
    assert response.status_code == 405 and response.mimetype == "text/html"
    assert "cannot be asked for with" in message(response) and "Allow" in response.headers


def test_the_json_api_keeps_answering_json_errors(alice):
    response = alice.client.put("/api/wikis")
    assert response.status_code == 405 and response.is_json
