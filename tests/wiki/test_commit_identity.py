"""A handle that robot.db holds from before it checked them never makes a write a 500.

Twenty-fifth review: `robot user add --handle '<img src=x onerror=alert(1)>.example'` was
stored, and every page write of that user failed: git takes no '<' in an author's name
(`ValueError: Commit identity ... must not contain '<'`). robot.db refuses such handles now
(tests/core/test_members.py, tests/ops/test_cli.py); one already stored gives way to the DID.
"""

import sqlite3

import pytest

from app.core.identity import Caller
from tests.wiki import test_tenancy
from tests.wiki.test_tenancy import OWNER_B
from tests.wiki.test_tenancy import Browser
from tests.wiki.test_tenancy import git_log

wiki = test_tenancy.wiki  # the in-process service with alpha, beta and pub, reused
BAD_HANDLES = [
    "<img src=x onerror=alert(1)>.example",
    "bob>.test",
    "bob.test\nX-Injected: yes",
    "bob\x00.test",
    "bob\x1b.test",
    "",
]


def test_a_write_by_a_user_with_a_bad_stored_handle_commits_as_their_did(wiki):
    with sqlite3.connect(wiki.settings.db_path) as db:
        db.execute("UPDATE users SET handle = ? WHERE did = ?", (BAD_HANDLES[0], OWNER_B[0]))
    bob = Browser(wiki, OWNER_B)
    form = {"content": "# Handled\n\nwritten all the same\n", "commit": "Handled save"}
    saved = bob.form_post("beta.localhost", "/Handled/edit", "/Handled/save", form)
    assert saved.status_code in (200, 302), saved.get_data(as_text=True)[:300]
    assert f"Handled save {OWNER_B[0]}" in git_log(wiki, "beta")
    assert "written all the same" in bob.text("beta.localhost", "/Handled")


@pytest.mark.parametrize("handle", BAD_HANDLES)
def test_a_handle_git_cannot_take_gives_way_to_the_did(handle):
    name, email = Caller("did:plc:bob", handle, "editor").git_identity("example.org")
    assert (name, email) == ("did:plc:bob", "did.plc.bob@example.org")


@pytest.mark.parametrize("did", ["did:plc:b<o>b", "did:plc:b\nb", "did:web:a b"])
def test_a_did_git_cannot_take_is_made_plain(did):
    name, email = Caller(did, None, "editor").git_identity("example.org")
    assert not any(c in name for c in "<>\n") and not any(c in email for c in "<>\n ")
    assert email.endswith("@example.org")


def test_a_valid_handle_stays_the_name():
    assert Caller("did:plc:bob", "Bob.Test", "editor").git_identity("x.org")[0] == "Bob.Test"
