"""Preferences only the platform decides never reach a wiki.db, by any form or any write."""

import sqlite3

import pytest

from app.wiki.otterwiki.preferences import is_platform_only
from tests.wiki import test_tenancy
from tests.wiki.test_tenancy import OWNER_A
from tests.wiki.test_tenancy import Browser

wiki = test_tenancy.wiki  # the in-process service with alpha, beta and pub, reused
HOST = "alpha.localhost"
PULL_URL = "git@example.org:someone-else/their-wiki.git"
# Every preferences form of Otterwiki 2.26.1 (views.py, /-/admin*), filled with what an
# attacker would save: remote pull/push, mail, registration, the server name.
FORMS = {
    "/-/admin": {
        "update_preferences": "1",
        "site_description": "guarded",
        "server_name": "evil.example",
    },
    "/-/admin/permissions_and_registration": {
        "READ_access": "ANONYMOUS",
        "disable_registration": "False",
        "auto_approval": "True",
        "email_needs_confirmation": "True",
        "notify_admins_on_register": "True",
        "notify_user_on_approval": "True",
    },
    "/-/admin/mail_preferences": {
        "update_mail_preferences": "1",
        "mail_sender": "wiki@example.org",
        "mail_server": "smtp.example.org",
        "mail_port": "25",
        "mail_username": "someone",
        "mail_password": "secret",
        "mail_security": "tls",
    },
    "/-/admin/repository_management": {
        "update_preferences": "1",
        "git_web_server": "True",
        "git_remote_pull_enabled": "True",
        "git_remote_pull_url": PULL_URL,
        "git_remote_push_enabled": "True",
        "git_remote_push_url": PULL_URL,
    },
    "/-/admin/content_and_editing": {"commit_message": "Optional", "wikilink_style": ""},
    "/-/admin/sidebar_preferences": {"sidebar_shortcuts": "home changelog"},
}
READ_ONLY_FORMS = ("/-/admin/permissions_and_registration",)
# What the issue names: remote pull/push, mail, registration, the auth method.
MUST_BE_REFUSED = (
    "GIT_REMOTE_PULL_URL",
    "GIT_REMOTE_PULL_ENABLED",
    "GIT_REMOTE_PUSH_URL",
    "GIT_REMOTE_PUSH_PRIVATE_KEY",
    "GIT_WEB_SERVER",
    "MAIL_SERVER",
    "MAIL_PASSWORD",
    "MAIL_DEFAULT_SENDER",
    "DISABLE_REGISTRATION",
    "AUTO_APPROVAL",
    "EMAIL_NEEDS_CONFIRMATION",
    "AUTH_METHOD",
    "SERVER_NAME",
    "auth_method",
)


def preferences(wiki, slug="alpha") -> dict:
    with sqlite3.connect(wiki.settings.wiki_db_path(slug)) as db:
        return dict(db.execute("SELECT name, value FROM preferences"))


@pytest.mark.parametrize("name", MUST_BE_REFUSED)
def test_platform_preferences_are_recognised(name):
    assert is_platform_only(name)


@pytest.mark.parametrize("name", ["SITE_NAME", "SITE_DESCRIPTION", "COMMIT_MESSAGE", "READ_ACCESS"])
def test_wiki_preferences_are_left_to_the_wiki(name):
    assert not is_platform_only(name)


def test_no_preferences_form_stores_the_platforms_settings(wiki, monkeypatch):
    # Take the gateway's block away: the model layer alone must refuse (a route we missed).
    monkeypatch.setattr("app.wiki.routes.BLOCKED", frozenset())
    monkeypatch.setattr("app.wiki.routes.READ_ONLY_ENDPOINTS", frozenset())
    admin = Browser(wiki, OWNER_A)
    for path, form in FORMS.items():
        response = admin.form_post(HOST, path, path, form)
        # Permissions and Registration is read-only: its view refuses posts itself, too.
        expected = (405,) if path in READ_ONLY_FORMS else (200, 302)
        assert response.status_code in expected, (path, response.get_data(as_text=True)[:300])
    saved = preferences(wiki)
    assert saved.get("SITE_DESCRIPTION") == "guarded"  # the forms did run and save
    assert [name for name in saved if is_platform_only(name)] == []


def test_a_direct_write_is_dropped_too(wiki):
    tenancy = wiki.app.tenancy
    server = tenancy.server
    with server.app.app_context():
        tenancy.activate(wiki.store.find_wiki("alpha"))
        session = server.db.session
        session.merge(server.Preferences(name="GIT_REMOTE_PULL_URL", value=PULL_URL))
        session.merge(server.Preferences(name="mail_server", value="smtp.example.org"))
        session.merge(server.Preferences(name="SITE_LOGO", value="/logo.png"))
        session.commit()
        tenancy.deactivate()
    saved = preferences(wiki)
    assert saved.get("SITE_LOGO") == "/logo.png"
    assert "GIT_REMOTE_PULL_URL" not in saved and "mail_server" not in saved


def test_rows_an_older_release_stored_are_purged_when_the_wiki_opens(wiki):
    with sqlite3.connect(wiki.settings.wiki_db_path("alpha")) as db:
        db.execute("INSERT INTO preferences VALUES ('GIT_REMOTE_PULL_URL', ?)", (PULL_URL,))
    wiki.app.tenancy.close()
    assert Browser(wiki, OWNER_A).open(HOST, "/Home").status_code in (200, 404)
    assert "GIT_REMOTE_PULL_URL" not in preferences(wiki)


# Otterwiki's sidebar form: one custom menu entry per pair of fields.
def custom_menu(entries: int) -> dict:
    form = {"sidebar_shortcuts": "home"}
    for n in range(entries):
        form[f"sidebar_custom_menu_title_{n}"] = f"Entry {n}"
        form[f"sidebar_custom_menu_link_{n}"] = f"/Page{n}"
    return form


def test_a_preferences_form_larger_than_a_form_is_refused_unread(wiki):
    """Twelfth review: a custom sidebar menu of 7,500 entries (an 8.9 MB form) was saved, and
    every page view spent 5 s on it. A form that carries neither a page's text nor a file may
    send at most FORM_BODY_BYTES; a page's text may be larger."""
    from app.wiki.gateway import FORM_BODY_BYTES

    admin = Browser(wiki, OWNER_A)
    path = "/-/admin/sidebar_preferences"
    before = preferences(wiki)
    refused = admin.form_post(HOST, path, path, custom_menu(2000))
    assert refused.status_code == 413, refused.status_code
    assert f"at most {FORM_BODY_BYTES} bytes" in refused.get_data(as_text=True)
    assert preferences(wiki) == before
    assert admin.form_post(HOST, path, path, custom_menu(3)).status_code in (200, 302)
    long_page = {"content": "# Long\n\n" + "A line of the page's text.\n" * 4000, "message": ""}
    saved = admin.form_post(HOST, "/Long/edit", "/Long/save", long_page)
    assert saved.status_code in (200, 302), saved.get_data(as_text=True)[:300]
    assert "line of the page" in admin.text(HOST, "/Long")


def test_drafts_stop_growing_wiki_db_at_its_cap(wiki, monkeypatch):
    """Twelfth review: five drafts of 4 MB under made-up page names grew wiki.db by 20 MB,
    outside the cap on the wiki's files. Past WIKI_DB_MAX_BYTES a draft is refused (507);
    saving a page still works."""
    import os

    from app.wiki import gateway

    admin = Browser(wiki, OWNER_A)
    draft = {"content": "# Draft\n\nunsaved words\n"}
    assert admin.form_post(HOST, "/Drafty/edit", "/Drafty/draft", draft).status_code == 200
    size = os.stat(wiki.settings.wiki_db_path("alpha")).st_size
    monkeypatch.setattr(gateway, "WIKI_DB_MAX_BYTES", size)
    refused = admin.form_post(HOST, "/Other/edit", "/Other/draft", draft)
    assert refused.status_code == 507, refused.status_code
    assert "save or discard drafts" in refused.get_data(as_text=True)
    saved = admin.form_post(HOST, "/Other/edit", "/Other/save", {**draft, "commit": "kept"})
    assert saved.status_code in (200, 302)
