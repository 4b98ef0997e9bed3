"""The preferences that name a page or a path, held to the page API's path rules.

Otterwiki 2.26.1 stores what its admin forms send for them unchecked: a wiki admin who saved
the 404 page `NoSuch\\x00` made every missing page of the wiki a 500 (`ValueError: embedded
null byte` resolving the file), and a home page with a NUL or a line break made `/` one
(twenty-fifth review). These are the home page, the 404 page, the custom menu's entries that
link to a page (a link, or a title without a link) and the logo and icon paths.

Three lines hold them. The forms (`/-/admin`, `/-/admin/sidebar_preferences`) are refused whole,
before Otterwiki's view writes anything, with the reason in an error toast on the form, answered
400. Any other write of such a row is dropped at the flush (app.wiki.otterwiki.preferences). And
a value stored before (by an older release, or by hand) is read as unset when the config is
loaded (`forget_unusable_preferences`), its menu entries left out, so no view trips on it.
"""

from __future__ import annotations

import json
import re
from types import ModuleType

from app.pages.names import MAX_FILE_PATH_CHARS
from app.pages.names import MAX_PATH_CHARS
from app.pages.names import has_control
from app.pages.names import page_path_problem

# The preferences that name a page of the wiki, by the form field that sets them.
PAGE_PREFERENCES = {"HOME_PAGE": "home page", "NOT_FOUND_PAGE": "404 page"}
# The preferences that hold a path or URL of an image, shown in every page's head.
PATH_PREFERENCES = {"SITE_LOGO": "logo", "SITE_ICON": "icon"}
MENU_PREFERENCE = "SIDEBAR_CUSTOM_MENU"
CHECKED = frozenset(PAGE_PREFERENCES) | frozenset(PATH_PREFERENCES) | {MENU_PREFERENCE}
# A home page may be one of Otterwiki's own pages (`/-/changelog`), which `/` redirects to:
# a plain path of it, no line break (a 500 building the Location header), no `//` or `..`.
_SPECIAL_PAGE = re.compile(r"/-/[A-Za-z0-9_./?=&%+~-]*\Z")
# Otterwiki's sidebar.py: a custom menu link that is a URL; any other link names a page.
_URL = re.compile(r"^(((https?)\:\/\/)|(mailto:))\S+")
_SEPARATOR = "---"
# A URL's scheme (RFC 3986 §3.1), as a browser reads one from a logo or icon's src.
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*):")
# Otterwiki's views of the forms that set them.
_FORMS = frozenset({"admin", "admin_sidebar_preferences"})


def _empty(value) -> bool:
    """Otterwiki's `empty`: None or only whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


def _special_page_problem(value: str) -> str | None:
    if len(value) > MAX_PATH_CHARS:
        return f"is longer than {MAX_PATH_CHARS} characters"
    if not _SPECIAL_PAGE.match(value) or "//" in value or ".." in value.split("/"):
        return "names none of the wiki's own pages (/-/...) in plain characters"
    return None


def _path_problem(value: str) -> str | None:
    if len(value) > MAX_FILE_PATH_CHARS:
        return f"is longer than {MAX_FILE_PATH_CHARS} characters"
    if has_control(value):
        return "contains control characters"
    return None


def _image_url_problem(value: str) -> str | None:
    """Why a logo or icon address cannot be an image's, or None: a URL of a scheme but https
    (`javascript:`, `data:`, `http:`) is never loaded under the wikis' policy (img-src, in
    app.core.csp), and each page broke it (reviews 47 and 55)."""
    scheme = _SCHEME.match(value)
    if scheme and scheme.group(1).lower() != "https":
        return f"is a {scheme.group(1)[:20]}: URL; give a path in the wiki or an https URL"
    return None


def _menu_entry_problem(entry) -> str | None:
    """Why one custom menu entry (Otterwiki's dict of link, title, icon) is unusable, or None."""
    if not isinstance(entry, dict) or not all(
        isinstance(entry.get(key, ""), str) for key in ("link", "title", "icon")
    ):
        return "a menu entry is not a link, a title and an icon"
    link, title, icon = entry.get("link", ""), entry.get("title", ""), entry.get("icon", "")
    if link == _SEPARATOR and _empty(title) and _empty(icon):
        return None
    if not _empty(link) and _URL.match(link):
        problem = _path_problem(link)
        return f"the menu link {link[:80]!r} {problem}" if problem else None
    page = title if _empty(link) else link  # Otterwiki links a title alone to its page
    if _empty(page):
        return None  # an icon alone: Otterwiki shows nothing for it
    problem = page_path_problem(page)
    return f"the menu entry {page[:80]!r} names no page: {problem}" if problem else None


def page_preference_problem(name: str, value) -> str | None:
    """Return why `value` cannot be stored as the preference `name`, or None when it can.

    Only the preferences that name a page or a path (`CHECKED`, any case) are judged; any
    other name, and an empty value, has no problem here. A home page or 404 page must be a
    page path the page API would take (app.pages.names.page_path_problem, after Otterwiki's
    own strip of '/'), or for the home page one of Otterwiki's `/-/` pages; a logo or icon
    path holds no control characters; a custom menu (its JSON) is a list whose entries link
    to URLs or to valid page paths.
    """
    key = str(name).upper()
    if key not in CHECKED or value is None or value == "":
        return None
    if not isinstance(value, str):
        return f"{key} is not text"
    if key in PATH_PREFERENCES:
        problem = _path_problem(value) or _image_url_problem(value)
        return f"the {PATH_PREFERENCES[key]} path {problem}" if problem else None
    if key == MENU_PREFERENCE:
        try:
            entries = json.loads(value)
        except ValueError:
            return "the custom menu is not valid JSON"
        if not isinstance(entries, list):
            return "the custom menu is not a list of entries"
        return next(filter(None, map(_menu_entry_problem, entries)), None)
    what = PAGE_PREFERENCES[key]
    if key == "HOME_PAGE" and value.startswith("/-/"):
        problem = _special_page_problem(value)
        return f"the {what} {value[:80]!r} {problem}" if problem else None
    problem = page_path_problem(value.strip("/"))
    return f"the {what} {value[:80]!r} names no page: {problem}" if problem else None


def forget_unusable_preferences(config: dict) -> None:
    """Read every preference of `CHECKED` in `config` (Otterwiki's app.config, just loaded)
    that has a problem as unset: the home page and 404 page become Otterwiki's defaults, a
    logo or icon path none, and a custom menu keeps only its usable entries. Values stored
    before the forms were checked (twenty-fifth review) made every missing page, or `/`, a
    500."""
    for key in (*PAGE_PREFERENCES, *PATH_PREFERENCES):
        if page_preference_problem(key, config.get(key)):
            config[key] = ""
    menu = config.get(MENU_PREFERENCE)
    if page_preference_problem(MENU_PREFERENCE, menu):
        try:
            entries = json.loads(menu) if isinstance(menu, str) else []
        except ValueError:
            entries = []
        kept = (
            [e for e in entries if not _menu_entry_problem(e)] if isinstance(entries, list) else []
        )
        config[MENU_PREFERENCE] = json.dumps(kept) if kept else ""


def _form_values(endpoint: str, form) -> dict:
    """The values of `CHECKED` preferences that Otterwiki's view of `endpoint` would store."""
    if endpoint == "admin":
        if _empty(form.get("update_preferences")):
            return {}  # handle_preferences stores nothing without it
        return {
            "HOME_PAGE": form.get("home_page", "").strip(),
            "NOT_FOUND_PAGE": form.get("not_found_page", "").strip().strip("/"),
            "SITE_LOGO": form.get("site_logo", ""),
            "SITE_ICON": form.get("site_icon", ""),
        }
    # handle_sidebar_preferences: one entry per link, title and icon (as many as the shortest
    # list, as its zip), the empty ones left out.
    fields = (form.getlist("link"), form.getlist("title"), form.getlist("icon"))
    entries = [
        {"link": link, "title": title, "icon": icon}
        for link, title, icon in zip(*fields, strict=False)
        if link.strip() or title.strip() or icon.strip()
    ]
    return {MENU_PREFERENCE: json.dumps(entries)}


def _check_preference_forms():
    """Before Otterwiki's admin and sidebar preference views: refuse a form that would store a
    page or path preference with a problem, writing nothing; the admin gets Otterwiki's error
    toast on the form again, answered 400."""
    from flask import request
    from otterwiki.auth import has_permission
    from otterwiki.helper import toast

    endpoint = request.endpoint
    if request.method != "POST" or endpoint not in _FORMS:
        return None
    if not has_permission("ADMIN"):
        return None  # Otterwiki's view refuses the caller (403) before it writes anything
    values = _form_values(endpoint, request.form)
    problem = next(
        filter(None, (page_preference_problem(name, value) for name, value in values.items())),
        None,
    )
    if problem is None:
        return None
    import otterwiki.preferences

    toast(f"Refused: {problem}. Nothing was saved.", "error")
    form = (
        otterwiki.preferences.admin_form
        if endpoint == "admin"
        else otterwiki.preferences.sidebar_preferences_form
    )
    return form(), 400


def install_page_preference_rules(server: ModuleType) -> None:
    """Check Otterwiki's admin and sidebar preference forms before their views (`server` is the
    booted `otterwiki.server`); the flush and the config load hold the other two lines."""
    server.app.before_request_funcs.setdefault(None, []).append(_check_preference_forms)
