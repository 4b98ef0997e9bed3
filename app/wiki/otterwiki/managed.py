"""Otterwiki's admin pages for what the platform decides: out of the menu, or shown read-only.

Who may read, edit and administer a wiki comes from the roles in robot.db (PROXY_HEADER mode),
so Otterwiki's Permissions and Registration form saved "Preferences updated" and changed
nothing. Its page now shows what the platform decides, read-only, with a link to the wiki's
settings page in the management UI; the gateway refuses any post to it (app/wiki/routes.py,
`READ_ONLY_ENDPOINTS`). User Management, Repository Management and Mail Preferences are blocked
by the gateway altogether; their menu entries are gone. Otterwiki's own Settings entry (a
page the platform blocks too) becomes a link to the wiki's settings page.
"""

from __future__ import annotations

from types import ModuleType

PERMISSIONS_ENDPOINT = "admin_permissions_and_registration"


def _menu_entry(href: str, icon: str, label: str, style: str = "") -> str:
    """One entry of Otterwiki 2.26.1's settings.html menu, exactly as the template writes it."""
    return (
        f'<a href="{href}" class="sidebar-link sidebar-link-with-icon">\n'
        f'    <span class="sidebar-icon"{style}>\n'
        f'        <i class="{icon}"></i>\n'
        "    </span>\n"
        f"    {label}\n"
        "</a>\n"
    )


def _url_for(endpoint: str) -> str:
    return '{{ url_for("' + endpoint + '") }}'


_WIDE = ' style="min-width: 3rem;"'
# The wiki's settings page on the platform, for its admins (the management UI checks again).
_PLATFORM_ENTRY = (
    '{% if has_permission("ADMIN") and robot_wiki_settings_url() %}\n'
    + _menu_entry("{{ robot_wiki_settings_url() }}", "fas fa-address-card", "Wiki settings")
    + "{% endif %}\n"
)
# Otterwiki's Settings entry (its own account page, blocked) becomes the platform's settings
# page; the entries of the pages the gateway blocks go.
TEMPLATE_ADDITIONS = (
    (
        "settings.html",
        _menu_entry(_url_for("settings"), "fas fa-address-card", "Settings"),
        _PLATFORM_ENTRY,
    ),
    *(
        ("settings.html", _menu_entry(_url_for(endpoint), icon, label, style), "")
        for endpoint, icon, label, style in (
            ("admin_repository_management", "fas fa-code-branch", "Repository Management", _WIDE),
            ("admin_user_management", "fas fa-users", "User Management", _WIDE),
            ("admin_mail_preferences", "far fa-envelope", "Mail Preferences", ""),
        )
    ),
)

# The read-only Permissions and Registration page, in Otterwiki's settings layout.
PERMISSIONS_PAGE = """{% extends "settings.html" %}
{% block content %}
<div class="card m-auto m-lg-20" id="permissions_and_registration">
<div class="mw-full">
<h3 class="card-title">Permissions and Registration</h3>
<p id="robot-permissions-managed">
  Who may read, edit and administer this wiki is decided by the platform, from the role each
  member holds. It is set on
  <a href="{{ settings_url }}" id="robot-permissions-settings">this wiki's settings page</a>,
  not here.
</p>
<table class="table" id="robot-permissions">
  <tbody>
    <tr><th scope="row">Read</th>
      <td>members (viewers, editors and admins){% if public %}, and everyone, signed in or
        not: this wiki is public{% else %}; this wiki is private{% endif %}</td></tr>
    <tr><th scope="row">Edit</th><td>editors and admins</td></tr>
    <tr><th scope="row">Attachments / upload</th><td>editors and admins</td></tr>
    <tr><th scope="row">Admin</th><td>admins</td></tr>
    <tr><th scope="row">Registration</th>
      <td>none on the wiki: people sign in with their account on the platform, and an admin
        adds them as members on the settings page</td></tr>
    <tr><th scope="row">Your role</th><td>{{ role or "none" }}</td></tr>
  </tbody>
</table>
</div>
</div>
{% endblock %}
"""


def wiki_settings_url() -> str | None:
    """The management UI's settings page of this request's wiki, or None outside a wiki."""
    from flask import g

    tenant = getattr(g, "tenant", None)
    if tenant is None:
        return None
    return f"{tenant.settings.api_origin}/app/wiki/{tenant.slug}"


def _permissions_page():
    from flask import abort
    from flask import g
    from flask import render_template_string
    from flask import request
    from otterwiki.auth import has_permission

    if not has_permission("ADMIN"):
        abort(403)
    if request.method not in ("GET", "HEAD"):
        abort(405)  # the gateway refuses posts first, with a page that says why
    tenant, caller = getattr(g, "tenant", None), getattr(g, "caller", None)
    if tenant is None:
        abort(404)
    return render_template_string(
        PERMISSIONS_PAGE,
        title="Permissions and Registration",
        settings_url=wiki_settings_url(),
        public=tenant.wiki.is_public,
        role=getattr(caller, "role", None),
    )


def install_managed_pages(server: ModuleType) -> None:
    """Show Permissions and Registration read-only and add `robot_wiki_settings_url` for the
    menu (`server` is the booted `otterwiki.server`). Posts never reach the view: the gateway
    refuses them; should one arrive anyway (an app without the gateway) it answers 405.
    """
    app = server.app
    app.view_functions[PERMISSIONS_ENDPOINT] = _permissions_page
    app.jinja_env.globals["robot_wiki_settings_url"] = wiki_settings_url
