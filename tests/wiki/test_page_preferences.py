"""Preferences that name a page or a path: refused when they name none, harmless if stored.

Twenty-fifth review: `not_found_page=NoSuch%00` saved on /-/admin made every missing page of the
wiki a 500 (`ValueError: embedded null byte`), and `home_page=Ho%00me` made `/` one.
"""

import json
import sqlite3

import pytest

from app.wiki.otterwiki.page_preferences import forget_unusable_preferences
from app.wiki.otterwiki.page_preferences import page_preference_problem
from tests.wiki import test_tenancy
from tests.wiki.test_tenancy import OWNER_A
from tests.wiki.test_tenancy import Browser

wiki = test_tenancy.wiki  # the in-process service with alpha, beta and pub, reused
HOST = "alpha.localhost"
ADMIN, SIDEBAR = "/-/admin", "/-/admin/sidebar_preferences"


def preferences(wiki, slug="alpha") -> dict:
    with sqlite3.connect(wiki.settings.wiki_db_path(slug)) as db:
        return dict(db.execute("SELECT name, value FROM preferences"))


def store_directly(wiki, name, value, slug="alpha") -> None:
    """Write a preference row as an older release (or a hand edit) could have."""
    with sqlite3.connect(wiki.settings.wiki_db_path(slug)) as db:
        db.execute("DELETE FROM preferences WHERE name = ?", (name,))
        db.execute("INSERT INTO preferences VALUES (?, ?)", (name, value))


@pytest.fixture
def admin(wiki):
    """alpha's owner, with alpha's page and path preferences cleared after the test."""
    browser = Browser(wiki, OWNER_A)
    assert browser.open(HOST, "/Home").status_code == 200  # wiki.db's tables made
    yield browser
    with sqlite3.connect(wiki.settings.wiki_db_path("alpha")) as db:
        db.execute(
            "DELETE FROM preferences WHERE name IN "
            "('HOME_PAGE', 'NOT_FOUND_PAGE', 'SITE_LOGO', 'SITE_ICON', 'SIDEBAR_CUSTOM_MENU')"
        )


def app_form(**fields) -> dict:
    return {"update_preferences": "1", "site_name": "Alpha Wiki", **fields}


def menu_form(*entries) -> dict:
    return {
        "link": [link for link, _ in entries],
        "title": [title for _, title in entries],
        "icon": ["" for _ in entries],
    }


# Each a member of the kind: a form that would store a page or path naming no valid page.
REFUSED_FORMS = [
    (ADMIN, app_form(not_found_page="NoSuch\x00")),
    (ADMIN, app_form(home_page="Ho\x00me")),
    (ADMIN, app_form(home_page="Ho\x07me")),  # another control character
    (ADMIN, app_form(home_page="/-/\r\nX-Injected: yes")),  # a redirect's header line
    (ADMIN, app_form(home_page="/-//evil.example")),
    (ADMIN, app_form(home_page="../outside")),
    (ADMIN, app_form(not_found_page="Notes/../../etc/passwd")),
    (ADMIN, app_form(home_page="A" * 600)),  # longer than a page path may be
    (ADMIN, app_form(not_found_page="/".join(["d"] * 80))),  # deeper than a page may be
    (ADMIN, app_form(not_found_page="Why?")),  # Otterwiki drops '?': never that page
    (ADMIN, app_form(site_logo="/logo\x00.png")),
    (ADMIN, app_form(site_icon="/icon\n.png")),
    # An image address of a scheme no page may load (review 47): each page broke the policy.
    (ADMIN, app_form(site_logo="javascript:alert(2)")),
    (ADMIN, app_form(site_icon="JavaScript:alert(3)")),
    (ADMIN, app_form(site_logo=" data:image/svg+xml,<svg onload=alert(1)>")),
    (ADMIN, app_form(site_icon="vbscript:x")),
    (ADMIN, app_form(site_logo="file:///etc/passwd")),
    # Review 55: the policy loads images over https only; an http logo broke every page.
    (ADMIN, app_form(site_logo="http://example.org/logo.png")),
    (ADMIN, app_form(site_icon=" HTTP://example.org/icon.png")),
    (SIDEBAR, menu_form(("Pa\x00ge", "Page"))),
    (SIDEBAR, menu_form(("Good", "Good"), ("../up", "Up"))),
    (SIDEBAR, menu_form(("", "Title\x00as page"))),  # a title alone links to its page
    (SIDEBAR, menu_form(("https://example.org/\x00", "Link"))),
]


@pytest.mark.parametrize(("path", "form"), REFUSED_FORMS, ids=range(len(REFUSED_FORMS)))
def test_a_form_naming_no_valid_page_is_refused_and_stores_nothing(wiki, admin, path, form):
    before = preferences(wiki)
    refused = admin.form_post(HOST, path, path, form)
    assert refused.status_code == 400, refused.status_code
    assert "Refused: " in refused.get_data(as_text=True)
    assert "Nothing was saved" in refused.get_data(as_text=True)
    assert preferences(wiki) == before
    assert admin.open(HOST, "/NoSuchPage").status_code == 404
    assert admin.open(HOST, "/").status_code == 200


def test_valid_pages_and_links_are_still_saved(wiki, admin):
    saved = admin.form_post(
        HOST, ADMIN, ADMIN, app_form(home_page="Home", not_found_page="/Missing/", site_logo="")
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)[:300]
    assert preferences(wiki)["HOME_PAGE"] == "Home"
    assert preferences(wiki)["NOT_FOUND_PAGE"] == "Missing"
    assert admin.open(HOST, "/NoSuchPage").status_code == 404
    special = admin.form_post(HOST, ADMIN, ADMIN, app_form(home_page="/-/changelog"))
    assert special.status_code == 302
    assert admin.open(HOST, "/").headers["Location"].endswith("/-/changelog")
    entries = (("Home", "Start"), ("https://example.org/a", "Out"), ("", "Notes/Today"))
    menu = admin.form_post(HOST, SIDEBAR, SIDEBAR, menu_form(*entries))
    assert menu.status_code == 302
    stored = json.loads(preferences(wiki)["SIDEBAR_CUSTOM_MENU"])
    assert [entry["link"] for entry in stored] == ["Home", "https://example.org/a", ""]


# Values written before the forms were checked: each read as unset, no view a 500.
STORED_BEFORE = [
    ("NOT_FOUND_PAGE", "NoSuch\x00"),
    ("NOT_FOUND_PAGE", "../../etc/passwd"),
    ("HOME_PAGE", "Ho\x00me"),
    ("HOME_PAGE", "/-/\r\nX-Injected: yes"),
    ("SITE_LOGO", "/logo\x00.png"),
    ("SITE_ICON", "javascript:alert(3)"),
    ("SITE_LOGO", "http://example.org/logo.png"),
    ("SIDEBAR_CUSTOM_MENU", json.dumps([{"link": "Pa\x00ge", "title": "x", "icon": ""}])),
    ("SIDEBAR_CUSTOM_MENU", "[1, null]"),  # entries Otterwiki's .get() raised on
    ("SIDEBAR_CUSTOM_MENU", "null"),
]


@pytest.mark.parametrize(("name", "value"), STORED_BEFORE, ids=range(len(STORED_BEFORE)))
def test_a_bad_value_already_stored_is_read_as_unset(wiki, admin, name, value):
    store_directly(wiki, name, value)
    missing = admin.open(HOST, "/NoSuchPage")
    assert missing.status_code == 404, missing.get_data(as_text=True)[:300]
    home = admin.open(HOST, "/")
    assert home.status_code == 200, home.get_data(as_text=True)[:300]
    assert "X-Injected" not in home.headers
    page = admin.open(HOST, "/Home")
    assert page.status_code == 200
    assert "javascript:" not in page.get_data(as_text=True)
    assert admin.open(HOST, SIDEBAR).status_code == 200


def test_usable_menu_entries_stay_when_one_is_bad(wiki, admin):
    entries = [
        {"link": "Home", "title": "Start", "icon": ""},
        {"link": "Bad\x00", "title": "Bad", "icon": ""},
    ]
    store_directly(wiki, "SIDEBAR_CUSTOM_MENU", json.dumps(entries))
    page = admin.text(HOST, "/Home")
    assert ">Start" in page and ">Bad" not in page


def test_a_write_past_the_forms_is_dropped_at_the_flush(wiki, admin):
    tenancy = wiki.app.tenancy
    server = tenancy.server
    with server.app.app_context():
        tenancy.activate(wiki.store.find_wiki("alpha"))
        session = server.db.session
        session.merge(server.Preferences(name="HOME_PAGE", value="Home"))
        session.commit()
        session.merge(server.Preferences(name="HOME_PAGE", value="Ho\x00me"))
        session.merge(server.Preferences(name="NOT_FOUND_PAGE", value="No\x00"))
        session.commit()
        assert server.storage.exists("no\x00such.md") is False  # a NUL is no file, no 500
        tenancy.deactivate()
    saved = preferences(wiki)
    assert saved["HOME_PAGE"] == "Home" and "NOT_FOUND_PAGE" not in saved


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("home_page", "Ho\x00me"),
        ("NOT_FOUND_PAGE", ".."),
        ("HOME_PAGE", "/-/a b"),
        ("SITE_ICON", "\x1b[31m"),
        ("SIDEBAR_CUSTOM_MENU", "{"),
        ("SIDEBAR_CUSTOM_MENU", '{"link": "Home"}'),
        ("SIDEBAR_CUSTOM_MENU", json.dumps([{"link": "---", "title": "x", "icon": ""}])),
        ("HOME_PAGE", 5),
    ],
)
def test_problems_are_named(name, value):
    assert page_preference_problem(name, value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOME_PAGE", ""),
        ("HOME_PAGE", "Notes/Today"),
        ("HOME_PAGE", "/-/search?q=x"),
        ("NOT_FOUND_PAGE", "/Missing/"),
        ("SITE_LOGO", "https://example.org/logo.png"),
        ("SITE_LOGO", "HTTPS://example.org/logo.png"),
        ("SITE_ICON", "//cdn.example.org/icon.png"),
        ("SITE_ICON", "/Home/a:b.png"),  # a colon after a slash is in the path
        ("SIDEBAR_CUSTOM_MENU", json.dumps([{"link": "---", "title": "", "icon": ""}])),
        ("SITE_NAME", "Any\x00thing"),  # not a page or a path: another rule's business
    ],
)
def test_valid_values_have_no_problem(name, value):
    assert page_preference_problem(name, value) is None


def test_forgetting_keeps_what_is_usable():
    config = {
        "HOME_PAGE": "Ho\x00me",
        "NOT_FOUND_PAGE": "Missing",
        "SITE_ICON": "/i\x00",
        "SIDEBAR_CUSTOM_MENU": json.dumps(
            [{"link": "Home", "title": "", "icon": ""}, {"link": "..", "title": "", "icon": ""}]
        ),
    }
    forget_unusable_preferences(config)
    assert config["HOME_PAGE"] == "" and config["SITE_ICON"] == ""
    assert config["NOT_FOUND_PAGE"] == "Missing"
    assert json.loads(config["SIDEBAR_CUSTOM_MENU"]) == [{"link": "Home", "title": "", "icon": ""}]
