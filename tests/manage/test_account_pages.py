"""The account page: who I am, my sessions (end any, the current one signs me out)."""

from __future__ import annotations

import pytest

from app.web.session_cookie import PLAIN_NAME
from tests.conftest import ALICE
from tests.conftest import BOB
from tests.manage.conftest import PageClient
from tests.manage.conftest import field_errors
from tests.manage.conftest import message


def test_account_shows_handle_did_and_sessions(alice, platform):
    page = alice.get("/app/account").get_data(as_text=True)
    assert "@alice.test" in page and ALICE[0] in page and "this browser" in page
    assert page.count('<tr data-session="') == 1


def test_end_another_session(alice, platform):
    other, secret = platform.store.create_session(ALICE[0], "localhost", 3600)
    response = alice.post(f"/app/account/sessions/{other.id}/end", {})
    assert response.status_code == 303 and response.location == "/app/account"
    assert platform.store.session_for_secret(secret, "localhost") is None
    assert alice.get("/app/account").status_code == 200  # this browser is still signed in


def test_ending_the_current_session_signs_this_browser_out(app, platform, people):
    browser = PageClient(app, platform)
    current = browser.sign_in(ALICE)
    response = browser.post(f"/app/account/sessions/{current}/end", {})
    assert response.status_code == 303 and response.location == "/"
    assert f"{PLAIN_NAME}=;" in response.headers["Set-Cookie"]
    assert platform.store.list_sessions(ALICE[0]) == []
    assert "you are signed out" in browser.get("/").get_data(as_text=True)


def test_another_persons_session_is_not_found_and_not_ended(alice, platform):
    theirs = platform.store.create_session(BOB[0], "localhost", 3600)[0]
    response = alice.post(f"/app/account/sessions/{theirs.id}/end", {})
    assert response.status_code == 404 and "no live session" in message(response)
    assert len(platform.store.list_sessions(BOB[0])) == 1


def test_a_forged_form_ends_no_session(alice, platform):
    other = platform.store.create_session(ALICE[0], "localhost", 3600)[0]
    response = alice.post(f"/app/account/sessions/{other.id}/end", {}, csrf="forged")
    assert response.status_code == 400
    assert len(platform.store.list_sessions(ALICE[0])) == 2


def test_delete_account_warns_with_the_wikis_that_go_with_it(alice, alpha):
    page = alice.get("/app/account").get_data(as_text=True)
    warning = page.split('id="doomed-wikis"')[1].split("</ul>")[0]
    assert "Alpha notes" in warning and "Gamma" not in warning


@pytest.mark.parametrize("confirm", ["", "bob.test", "alice"])
def test_delete_account_needs_my_handle_typed(alice, alpha, platform, confirm):
    response = alice.post("/app/account/delete", {"confirm": confirm})
    assert response.status_code == 400 and "alice.test" in field_errors(response)["confirm"]
    assert platform.store.find_user(ALICE[0]) and platform.store.find_wiki("alpha")


def test_delete_account_takes_my_wikis_and_signs_me_out(alice, alpha, platform):
    response = alice.post("/app/account/delete", {"confirm": "@alice.test"})
    assert response.status_code == 303 and response.location == "/"
    assert f"{PLAIN_NAME}=;" in response.headers["Set-Cookie"]
    assert platform.store.find_user(ALICE[0]) is None and platform.store.find_wiki("alpha") is None
    assert platform.store.find_wiki("gamma") is not None  # Carol's
    assert "the wikis you owned (alpha)" in alice.get("/").get_data(as_text=True)


def test_a_forged_form_deletes_no_account(alice, alpha, platform):
    response = alice.post("/app/account/delete", {"confirm": "alice.test"}, csrf="forged")
    assert response.status_code == 400 and platform.store.find_user(ALICE[0]) is not None
