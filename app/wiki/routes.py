"""Which Otterwiki route a request would run, matched exactly as Flask will, and which we refuse.

The gateway decides by the endpoint, never by how the path is spelled: Werkzeug strips leading
slashes, merges repeated ones, follows its own redirects and answers HEAD and OPTIONS for the
rules of GET, so a prefix check on PATH_INFO misses routes (`//-/admin/...` ran the admin view).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote
from urllib.parse import urlsplit

from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import RequestRedirect

from app.wiki.static import STATIC_PREFIX

# The path a wiki's Content-Security-Policy runs script and style files from (csp._own_files).
SCRIPT_PATH = STATIC_PREFIX + "/"
# Otterwiki endpoints no wiki may reach, each with why. Blocking acts on every method and spelling.
BLOCKED_ENDPOINTS = {
    "admin_repository_management": "remote push/pull reaches other hosts with the platform's keys",
    "admin_mail_preferences": "mail belongs to the platform; a wiki has no mail server of its own",
    "admin_user_management": "members and roles live in robot.db; the management UI edits them",
    "user": "Otterwiki's own accounts are unused: the platform says who the caller is",
    "settings": "a user's name and password are the platform's (PROXY_HEADER mode has no form)",
    "register": "sign-up happens at the platform's auth service",
    "lost_password": "there are no wiki passwords to recover",
    "confirm_email": "there are no wiki accounts to confirm",
    "recover_password": "there are no wiki passwords to recover",
    "request_confirmation_link": "it would send mail, which belongs to the platform",
    "security_check": "it reports on the host, which is the platform's business",
    "pull_webhook": "it pulls into 'the' repo outside the request, from a remote",
    # The gateway answers these itself (app/wiki/git_http.py), with the platform's roles.
    "dotgit": "Otterwiki's own git server would bypass the roles the platform grants",
    "git_info_refs": "Otterwiki's own git server would bypass the roles the platform grants",
    "git_upload_pack": "Otterwiki's own git server would bypass the roles the platform grants",
    "git_receive_pack": "Otterwiki's own git server would bypass the roles the platform grants",
}
BLOCKED = frozenset(BLOCKED_ENDPOINTS)
# Otterwiki's admin pages for what the platform decides, each with what to tell the visitor (a
# wiki admin who followed an old link, most likely) instead: the gateway answers with this and a
# link to the wiki's settings page in the management UI.
MANAGED_ENDPOINTS = {
    "admin_user_management": (
        "Members and their roles are managed by the platform: add people, change their role "
        "or remove them on this wiki's settings page."
    ),
    "admin_mail_preferences": (
        "Mail belongs to the platform: a wiki has no mail server of its own to configure."
    ),
    "admin_repository_management": (
        "The wiki's repository is kept by the platform: pushing to or pulling from other "
        "hosts is not available, and its history is on this wiki's settings page."
    ),
    "admin_permissions_and_registration": (
        "Who may read, edit and administer this wiki is decided by the platform: the roles "
        "members hold and whether the wiki is public are set on this wiki's settings page. "
        "Nothing was changed."
    ),
}
# Managed pages Otterwiki still shows, read-only (app/wiki/otterwiki/managed.py replaces the
# view): reading them is allowed, any other method is refused before Otterwiki runs.
READ_ONLY_ENDPOINTS = frozenset({"admin_permissions_and_registration"})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# View arguments that name a file or folder in the wiki's repository.
_PATH_ARGS = ("path", "pagepath", "filename")
# No page or attachment has these names; in a file path they climb out or into git's own data.
_FORBIDDEN_SEGMENTS = frozenset({".", "..", ".git"})
# Control characters (NUL above all) are in no file name git or the file system will take.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# Werkzeug redirects once, to add a slash or merge slashes; a third hop would be a loop.
_MAX_REDIRECTS = 3
_PAGE_API_PREFIX = "page_api."


@dataclass(frozen=True)
class Route:
    """What Flask would run for a request.

    `endpoint` is the rule's endpoint after any redirects Werkzeug would issue (None when no
    rule matches); `args` its view arguments; `redirects` tells that Werkzeug answers with a
    redirect first; `method_allowed` is False when the path matches but not for this method;
    `blocked` is the reason the platform refuses it, or None; `managed` is, for Otterwiki's
    admin pages of what the platform decides, what to tell the visitor instead (else None).
    """

    endpoint: str | None
    args: dict
    redirects: bool = False
    method_allowed: bool = True
    blocked: str | None = None

    @property
    def managed(self) -> str | None:
        return MANAGED_ENDPOINTS.get(self.endpoint) if self.blocked else None

    @property
    def is_page_api(self) -> bool:
        return self.endpoint is not None and self.endpoint.startswith(_PAGE_API_PREFIX)


def _unsafe_path_arg(args: dict) -> str | None:
    for name in _PATH_ARGS:
        value = args.get(name)
        if not isinstance(value, str):
            continue
        if _CONTROL_RE.search(value) or any(
            segment.casefold() in _FORBIDDEN_SEGMENTS for segment in value.split("/")
        ):
            return f"{value!r} is not a name a page or file can have"
    return None


class Routes:
    """Match requests against a Flask app's URL map the way that app will route them.

    `app` is the Flask app (Otterwiki's, with the page API registered). `match(environ)`
    returns a `Route`; it never raises for a request Werkzeug can parse.
    """

    def __init__(self, app):
        self.app = app

    def match(self, environ) -> Route:
        """Return the `Route` Flask would run for the WSGI `environ` (Flask's own URL adapter)."""
        try:
            adapter = self.app.create_url_adapter(self.app.request_class(environ))
        except HTTPException:  # a Host header Werkzeug cannot parse: no route, Flask says 400
            return Route(None, {})
        method = environ.get("REQUEST_METHOD", "GET").upper()
        route = self._follow(adapter, None, method)
        if route.endpoint is None or route.blocked:
            return route
        if environ.get("PATH_INFO", "").startswith(SCRIPT_PATH) and route.endpoint != "static":
            # A wiki's policy runs script and style files from under /static/ (app.core.csp),
            # which a browser matches after decoding: `/static/%2Fx/a/evil.js` reached an
            # upload (review 39). There only Flask's static view answers.
            return _blocked(route, "only the platform's own files are under /static/")
        if route.endpoint in BLOCKED:
            return _blocked(route, BLOCKED_ENDPOINTS[route.endpoint])
        if route.endpoint in READ_ONLY_ENDPOINTS and method not in _READ_METHODS:
            # Otterwiki's form would answer "Preferences updated" and change nothing that counts.
            return Route(route.endpoint, route.args, route.redirects, False, "read-only page")
        if route.is_page_api:
            return route  # the page API checks its paths itself and says what is wrong (400)
        reason = _unsafe_path_arg(route.args)
        return _blocked(route, reason) if reason else route

    def page_api_methods(self, environ) -> list[str]:
        """The methods for which the page API serves this request's path (none: not its path).

        A path the page API serves for GET only may match one of Otterwiki's own routes for
        POST; the caller answers 405 (wrong method) for it, not 404 (no such path).
        """
        try:
            adapter = self.app.create_url_adapter(self.app.request_class(environ))
        except HTTPException:
            return []
        methods = []
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if self._follow(adapter, None, method).is_page_api:
                methods.append(method)
        return methods

    def _follow(self, adapter, path: str | None, method: str) -> Route:
        redirects = False
        for _ in range(_MAX_REDIRECTS):
            try:
                rule, args = adapter.match(path, method, return_rule=True)
            except RequestRedirect as redirect:
                # Werkzeug quotes the path it redirects to; match it as it will arrive.
                path, redirects = unquote(urlsplit(redirect.new_url).path), True
                continue
            except MethodNotAllowed as refusal:
                return self._not_allowed(adapter, path, refusal.valid_methods or (), redirects)
            except HTTPException:
                return Route(None, {}, redirects)
            return Route(rule.endpoint, args, redirects)
        return Route(None, {}, redirects, blocked="too many redirects")

    def _not_allowed(self, adapter, path, methods, redirects: bool) -> Route:
        """A 405 for this method: refuse it if any method would reach a blocked endpoint."""
        endpoint = None
        for method in sorted(methods):
            route = self._follow(adapter, path, method)
            if route.endpoint in BLOCKED or route.endpoint in READ_ONLY_ENDPOINTS:
                return Route(route.endpoint, route.args, redirects, False, "blocked endpoint")
            endpoint = endpoint or route.endpoint
        return Route(endpoint, {}, redirects, method_allowed=False)


def _blocked(route: Route, reason: str) -> Route:
    return Route(route.endpoint, route.args, route.redirects, route.method_allowed, reason)
