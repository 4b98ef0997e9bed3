"""The platform's account in Otterwiki's user menu, and the handoff route in Otterwiki's URL map.

Otterwiki in PROXY_HEADER mode always sees an authenticated user (the gateway names even an
anonymous visitor) and offers its own Settings link and no logout. The user menu instead shows
the signed-in user's handle with "Your wikis" (the platform's dashboard) and "Log out" (the
platform's logout, which ends the session on every host), or "Log in" (the session handoff) for
anonymous visitors of public wikis.
"""

from __future__ import annotations

from types import ModuleType
from urllib.parse import quote

from app.core import handoff

# The handoff's redemption route: in Otterwiki's URL map so the gateway finds it by endpoint,
# exactly as Flask would route it, and answers it before Otterwiki runs (app/wiki/gateway.py).
REDEEM_ENDPOINT = "robot_redeem_session"
# Otterwiki's layout.html: our menu entries go first, its own (login/settings) never render.
MENU_ANCHOR = "{%- if not current_user.is_authenticated %}"
MENU = """{%- set robot = robot_account() %}
{%- if robot %}
                    <div class="dropdown-divider mt-5 mb-5"></div>
{%- if robot.handle %}
                    <span class="dropdown-item-with-icon" id="robot-account" title="Signed in as">
                        <span class="dropdown-icon"><i class="fas fa-user"></i></span>
                        {{ robot.handle }}
                    </span>
                    <a href="{{ robot.wikis_url }}" id="robot-wikis"
                       class="dropdown-item-with-icon">
                        <span class="dropdown-icon"><i class="fas fa-book"></i></span>
                        Your wikis
                    </a>
                    <a href="{{ robot.logout_url }}" id="robot-logout"
                       class="dropdown-item-with-icon">
                        <span class="dropdown-icon"><i class="fas fa-sign-out-alt"></i></span>
                        Log out
                    </a>
{%- else %}
                    <a href="{{ robot.login_url }}" id="robot-login"
                       class="dropdown-item-with-icon">
                        <span class="dropdown-icon"><i class="fas fa-sign-in-alt"></i></span>
                        Log in
                    </a>
{%- endif %}
{%- elif not current_user.is_authenticated %}"""
TEMPLATE_ADDITION = ("layout.html", MENU_ANCHOR, MENU)


def _redeemed_by_gateway():
    from app.core.errors import NotFound

    raise NotFound("the gateway answers this route")  # never reached through the gateway


def robot_account() -> dict | None:
    """The user menu's entries for this request: `{"handle", "logout_url", "wikis_url"}` for a
    signed-in caller, `{"handle": None, "login_url"}` for an anonymous one, None outside a wiki."""
    from flask import g
    from flask import request

    tenant, caller = getattr(g, "tenant", None), getattr(g, "caller", None)
    if tenant is None or caller is None:
        return None
    settings = tenant.settings
    if not caller.is_anonymous:
        logout_url = settings.auth_origin + handoff.LOGOUT_PATH
        return {
            "handle": caller.handle or caller.did,
            "logout_url": logout_url,
            "wikis_url": settings.dashboard_url,
        }
    here = handoff.wiki_origin(settings, tenant.slug) + quote(request.path)
    query = request.query_string.decode("latin-1")
    return {
        "handle": None,
        "login_url": handoff.wiki_session_url(
            settings, tenant.slug, here + ("?" + query if query else "")
        ),
    }


def install_account(server: ModuleType) -> None:
    """Add the handoff route and the `robot_account` template global to Otterwiki's app."""
    app = server.app
    app.add_url_rule(handoff.REDEEM_PATH, REDEEM_ENDPOINT, _redeemed_by_gateway)
    app.jinja_env.globals["robot_account"] = robot_account
