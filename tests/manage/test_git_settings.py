"""The settings page's git section: admins turn git access on and off; members see how to clone
and where to download the whole wiki."""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlsplit

from tests.manage.conftest import message

PAGE = "/app/wiki/alpha"


def test_admin_turns_git_access_on_and_sees_how_to_clone(alice, alpha, platform):
    response = alice.post(PAGE + "/git", {"git_access": "on"})
    assert response.status_code == 303 and platform.store.get_wiki("alpha").git_access is True
    page = alice.get(PAGE).get_data(as_text=True)
    assert "http://alpha.localhost:8000/.git" in page and "any user name" in page


def test_an_unticked_box_turns_git_access_off(alice, alpha, platform):
    platform.store.update_wiki("alpha", git_access=True)
    assert alice.post(PAGE + "/git", {}).status_code == 303
    assert platform.store.get_wiki("alpha").git_access is False
    assert 'id="git-off"' in alice.get(PAGE).get_data(as_text=True)


def test_a_member_who_is_not_admin_cannot_turn_git_access_on(bob, alpha, platform):
    response = bob.post(PAGE + "/git", {"git_access": "on"})
    assert response.status_code == 403 and "needs admin" in message(response)
    assert platform.store.get_wiki("alpha").git_access is False


def test_download_links_sign_the_browser_in_on_the_wiki_first(bob, alpha, platform):
    page = bob.get(PAGE).get_data(as_text=True)
    link = page.split('id="export-tar"')[0].rsplit('href="', 1)[1].split('"')[0]
    link = link.replace("&amp;", "&")
    assert link.startswith(platform.settings.auth_origin)
    return_to = parse_qs(urlsplit(link).query)["return_to"][0]
    assert return_to == "http://alpha.localhost:8000/api/v1/export?format=tar.gz"
