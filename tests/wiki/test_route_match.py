"""The gateway's route decision in process: by the endpoint Flask would run, never by spelling."""

import pytest
from werkzeug.test import EnvironBuilder

from app.wiki.routes import BLOCKED
from app.wiki.routes import BLOCKED_ENDPOINTS
from app.wiki.routes import MANAGED_ENDPOINTS
from app.wiki.routes import READ_ONLY_ENDPOINTS
from tests.wiki import test_tenancy

wiki = test_tenancy.wiki  # the in-process service with alpha, beta and pub, reused


def route(wiki, path, method="GET"):
    environ = EnvironBuilder(
        path="/", method=method, base_url="http://alpha.localhost"
    ).get_environ()
    environ["PATH_INFO"] = path  # raw, as gunicorn hands it over
    return wiki.app.routes.match(environ)


def test_every_blocked_endpoint_is_one_of_otterwikis(wiki):
    """A release that renames a blocked view must fail here, not quietly unblock it."""
    endpoints = {rule.endpoint for rule in wiki.app.tenancy.app.url_map.iter_rules()}
    assert BLOCKED <= endpoints, sorted(BLOCKED - endpoints)
    assert all(reason for reason in BLOCKED_ENDPOINTS.values())


@pytest.mark.parametrize(
    ("path", "method", "endpoint"),
    [
        ("/-/admin/user_management", "GET", "admin_user_management"),
        ("//-/admin/user_management", "GET", "admin_user_management"),
        ("///-/admin/mail_preferences", "POST", "admin_mail_preferences"),
        ("/-/admin/repository_management", "PUT", "admin_repository_management"),
        ("/-/admin/repository_management", "OPTIONS", "admin_repository_management"),
        ("/-/admin/repository_management", "HEAD", "admin_repository_management"),
        ("/.git/info/refs", "GET", "git_info_refs"),
        ("/-/user/", "GET", "user"),
        ("/-/settings", "HEAD", "settings"),
    ],
)
def test_blocked_endpoints_are_found_whatever_the_spelling_or_method(wiki, path, method, endpoint):
    found = route(wiki, path, method)
    assert (found.endpoint, bool(found.blocked)) == (endpoint, True)


@pytest.mark.parametrize(
    "path",
    [
        "/.git/config",
        "/Home/../../etc/passwd",
        "/x/.GIT/hooks",
        "/Home\x00",
        "/Home/a/..",
        "/./Home",
    ],
)
def test_paths_no_page_can_have_are_refused(wiki, path):
    found = route(wiki, path)
    assert found.blocked and "not a name" in found.blocked


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/", "index"),
        ("/Home", "view"),
        ("/-/admin", "admin"),
        ("/-/login", "login"),
        ("/static/css/otterwiki.css", "static"),
        ("/api/v1/pages/Home", "page_api.read_page"),
        ("/-/ADMIN/user_management", "view"),  # a page of that name, not the admin view
    ],
)
def test_allowed_routes_are_not_blocked(wiki, path, endpoint):
    found = route(wiki, path)
    assert (found.endpoint, found.blocked) == (endpoint, None)


def test_a_redirect_is_followed_to_the_route_it_leads_to(wiki):
    found = route(wiki, "/-/user")  # Werkzeug redirects to /-/user/ (strict slashes)
    assert found.redirects and found.endpoint == "user" and found.blocked


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_the_read_only_permissions_page_is_read(wiki, method):
    found = route(wiki, "/-/admin/permissions_and_registration", method)
    assert (found.endpoint, found.blocked, found.managed) == (
        "admin_permissions_and_registration",
        None,
        None,
    )


@pytest.mark.parametrize(
    "path",
    [
        "/-/admin/permissions_and_registration",
        "//-/admin/permissions_and_registration",
        "///-/admin/permissions_and_registration",
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_no_other_method_reaches_the_permissions_page(wiki, path, method):
    found = route(wiki, path, method)
    assert found.endpoint == "admin_permissions_and_registration"
    assert found.blocked and "decided by the platform" in found.managed


def test_every_managed_endpoint_is_one_of_otterwikis(wiki):
    endpoints = {rule.endpoint for rule in wiki.app.tenancy.app.url_map.iter_rules()}
    assert set(MANAGED_ENDPOINTS) <= endpoints
    assert READ_ONLY_ENDPOINTS <= set(MANAGED_ENDPOINTS)
    # Every managed page is either blocked outright or read-only: none runs Otterwiki's form.
    assert set(MANAGED_ENDPOINTS) == (BLOCKED & set(MANAGED_ENDPOINTS)) | READ_ONLY_ENDPOINTS
