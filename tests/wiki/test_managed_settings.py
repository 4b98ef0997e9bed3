"""Otterwiki's admin pages for what the platform decides, and roles that hold in the wiki UI.

Permissions and Registration is shown read-only with what the platform decides; User Management,
Repository Management and Mail Preferences are out of the menu and answer 404 with a page that
says where they are managed. No post to any of them changes anything or says "Preferences
updated". What the platform grants is what the wiki UI allows: a viewer cannot edit or upload,
an editor cannot reach admin pages, an admin of one wiki gets nothing on another.
"""

import io
import re
import sqlite3

import pytest

from tests.wiki import test_tenancy
from tests.wiki.test_routes import BLOCKED as ROUTE_MARKERS
from tests.wiki.test_tenancy import OWNER_A
from tests.wiki.test_tenancy import OWNER_B
from tests.wiki.test_tenancy import VIEWER
from tests.wiki.test_tenancy import Browser
from tests.wiki.test_tenancy import git_log

wiki = test_tenancy.wiki  # the in-process service with alpha, beta and pub, reused
HOST = "alpha.localhost"
EDITOR = ("did:plc:managed-dave", "dave.test")
PERMISSIONS = "/-/admin/permissions_and_registration"
# The admin pages the gateway blocks, and what only Otterwiki's own view of each would send.
BLOCKED_PAGES = {path: marker for path, marker in ROUTE_MARKERS.items() if "/-/admin/" in path}
# The admin pages that do work for a wiki's admin.
WORKING_PAGES = (
    "/-/admin",
    "/-/admin/sidebar_preferences",
    "/-/admin/content_and_editing",
)
PERMISSIONS_FORM = {
    "READ_access": "ADMIN",
    "WRITE_access": "ADMIN",
    "ATTACHMENT_access": "ADMIN",
    "disable_registration": "False",
}


@pytest.fixture(scope="module")
def admin(wiki):
    return Browser(wiki, OWNER_A)


@pytest.fixture(scope="module")
def editor(wiki):
    wiki.store.upsert_user(*EDITOR)
    wiki.store.set_member("alpha", EDITOR[0], "editor")
    return Browser(wiki, EDITOR)


@pytest.fixture(scope="module")
def viewer(wiki):
    return Browser(wiki, VIEWER)


def settings_url(wiki, slug="alpha") -> str:
    return f"{wiki.settings.api_origin}/app/wiki/{slug}"


def preferences(wiki, slug="alpha") -> dict:
    with sqlite3.connect(wiki.settings.wiki_db_path(slug)) as db:
        return dict(db.execute("SELECT name, value FROM preferences"))


def send(browser, target, method="GET", **kwargs):
    """Open `target` as its raw path: a client reads `//-/...` as a host, the server does not."""
    if target.startswith("//"):
        kwargs["environ_overrides"] = {"PATH_INFO": target}
        target = "/"
    return browser.open(HOST, target, method=method, **kwargs)


def menu_links(page: str) -> list[str]:
    """The hrefs of the settings menu (Otterwiki's sidebar of admin pages)."""
    return re.findall(r'<a href="([^"]+)"[^>]*class="sidebar-link sidebar-link-with-icon"', page)


def test_the_admin_menu_offers_only_pages_that_work(wiki, admin):
    links = menu_links(admin.text(HOST, "/-/admin"))
    for path in (*WORKING_PAGES, PERMISSIONS, "/-/housekeeping"):
        assert path in links, (path, links)
    for path in (*BLOCKED_PAGES, "/-/settings"):
        assert path not in links, (path, links)
    assert settings_url(wiki) in links  # the platform's settings page instead


def test_an_editor_sees_no_admin_entries(editor):
    page = editor.text(HOST, "/-/housekeeping")
    links = menu_links(page)
    assert "/-/housekeeping" in links
    assert not [link for link in links if "/-/admin" in link or "/app/wiki/" in link], links


def test_permissions_page_shows_what_the_platform_decides(wiki, admin):
    response = admin.open(HOST, PERMISSIONS)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<form" not in page.split('id="permissions_and_registration"')[1]  # read-only
    assert "this wiki is private" in page and "Your role</th><td>admin" in page
    assert f'href="{settings_url(wiki)}" id="robot-permissions-settings"' in page
    public = admin.text("pub.localhost", PERMISSIONS)
    assert "everyone, signed in or" in public and "this wiki is public" in public
    assert settings_url(wiki, "pub") in public


@pytest.mark.parametrize(
    "path",
    [
        PERMISSIONS,
        "//-/admin/permissions_and_registration",
        "/%2D/admin/permissions_and_registration",
        "/-/admin/permissions%5Fand%5Fregistration",
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_no_post_to_permissions_changes_anything(wiki, admin, path, method):
    before = preferences(wiki)
    page = admin.text(HOST, PERMISSIONS)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = send(admin, path, method, data={**PERMISSIONS_FORM, "csrf_token": token})
    text = response.get_data(as_text=True)
    assert response.status_code == 405, (path, text[:300])
    assert "decided by the platform" in text and "Nothing was changed" in text
    assert f'href="{settings_url(wiki)}"' in text
    assert "Preferences updated" not in text
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert preferences(wiki) == before


@pytest.mark.parametrize("path", sorted(BLOCKED_PAGES))
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_blocked_pages_say_where_they_are_managed(wiki, admin, path, method):
    before = preferences(wiki)
    for target in (
        path,
        "/" + path,
        path.replace("/-/", "/%2D/"),
        "///" + path.lstrip("/"),
    ):
        response = send(admin, target, method, data={"update_preferences": "1"})
        text = response.get_data(as_text=True)
        assert response.status_code == 404, (target, text[:300])
        assert "by the platform" in text or "belongs to the platform" in text
        assert f'href="{settings_url(wiki)}"' in text
        assert BLOCKED_PAGES[path] not in text and "Preferences updated" not in text
    assert preferences(wiki) == before


@pytest.mark.parametrize("path", [PERMISSIONS, *BLOCKED_PAGES])
@pytest.mark.parametrize("spelling", ["trailing slash", "two trailing slashes", "inner //"])
def test_spellings_that_name_a_page_change_nothing(wiki, admin, path, spelling):
    """`/-/admin/x/` and `/-/admin//x` are no admin route (Flask runs the page view for them):
    the post is refused as a page name, and no preference changes."""
    before = preferences(wiki)
    page = admin.text(HOST, "/-/admin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = {**PERMISSIONS_FORM, "update_preferences": "1", "csrf_token": token}
    target = {
        "trailing slash": path + "/",
        "two trailing slashes": path + "//",
        "inner //": path.replace("/admin/", "/admin//"),
    }[spelling]
    response = admin.open(HOST, target, method="POST", data=data)
    assert 400 <= response.status_code < 500
    assert "Preferences updated" not in response.get_data(as_text=True)
    assert preferences(wiki) == before


def test_pages_that_work_still_save(wiki, admin):
    response = admin.form_post(
        HOST,
        "/-/admin/content_and_editing",
        "/-/admin/content_and_editing",
        {"commit_message": "Optional", "wikilink_style": ""},
    )
    assert response.status_code in (200, 302), response.get_data(as_text=True)[:300]
    assert preferences(wiki).get("COMMIT_MESSAGE") == "Optional"
    for path in WORKING_PAGES:
        assert admin.open(HOST, path).status_code == 200, path


def test_a_viewer_can_neither_edit_nor_upload(wiki, viewer):
    assert viewer.open(HOST, "/Home").status_code in (200, 404)
    assert viewer.open(HOST, "/Home/edit").status_code == 403
    page = viewer.text(HOST, "/Home")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    token = token.group(1) if token else ""
    save = viewer.open(
        HOST,
        "/Viewed/save",
        method="POST",
        data={"content": "viewer was here\n", "commit": "viewer save", "csrf_token": token},
    )
    assert save.status_code == 403
    upload = viewer.open(
        HOST,
        "/Home/attachments",
        method="POST",
        data={"file": (io.BytesIO(b"viewer bytes"), "viewer.txt"), "csrf_token": token},
    )
    assert upload.status_code == 403
    assert "viewer" not in git_log(wiki, "alpha")
    for path in (*WORKING_PAGES, PERMISSIONS):
        assert viewer.open(HOST, path).status_code == 403, path


def test_an_editor_edits_but_reaches_no_admin_page(wiki, editor):
    response = editor.form_post(
        HOST, "/Edited/edit", "/Edited/save", {"content": "# Edited\n", "commit": "editor save"}
    )
    assert response.status_code in (200, 302)
    assert "editor save dave.test" in git_log(wiki, "alpha")
    before = preferences(wiki)
    for path in (*WORKING_PAGES, PERMISSIONS):
        assert editor.open(HOST, path).status_code == 403, path
    token = re.search(
        r'name="csrf_token" value="([^"]+)"', editor.text(HOST, "/Edited/edit")
    ).group(1)
    for path in WORKING_PAGES:
        data = {"update_preferences": "1", "site_name": "Editor's", "csrf_token": token}
        assert editor.open(HOST, path, method="POST", data=data).status_code == 403, path
    assert preferences(wiki) == before


def test_an_admin_of_one_wiki_gets_nothing_on_another(wiki):
    bob = Browser(wiki, OWNER_B)  # admin of beta, nothing in alpha
    before = preferences(wiki)
    for path in ("/", "/Home/edit", *WORKING_PAGES, PERMISSIONS):
        response = bob.open(HOST, path)
        assert response.status_code == 403, path
        assert "not a member" in response.get_data(as_text=True)
    data = {"update_preferences": "1", "site_name": "Bob's now"}
    assert bob.open(HOST, "/-/admin", method="POST", data=data).status_code == 403
    assert preferences(wiki) == before
    assert bob.open("beta.localhost", "/-/admin").status_code == 200  # his own wiki
