"""The auth service (:8003): key sets, sign-in with ATProto, the OAuth server for MCP clients."""

from __future__ import annotations

from flask import Flask

from app.auth import login_views
from app.auth import oauth_views
from app.auth import session_views
from app.auth import views as auth_views
from app.auth.metadata import authorization_server_metadata
from app.auth.oauth_server import OAuthServer
from app.auth.revocation import UPSTREAM_REVOKER
from app.auth.revocation import revoke_with_atproto
from app.core.atproto_identity import network_for
from app.core.settings import Settings
from app.core.signing import SigningKey
from app.core.signing import derive_secret
from app.web.flask_app import load_or_exit
from app.web.flask_app import load_platform
from app.web.flask_app import make_flask_app


def create_app(settings: Settings | None = None) -> Flask:
    """Create the auth service's Flask app."""
    platform = load_platform(settings, "auth")
    settings = platform.settings
    client_key = load_or_exit("auth", SigningKey.load, settings.client_key_path)
    app = make_flask_app(__name__, platform)
    # Flask's signed cookie carries only the login form's CSRF token (Flask-WTF), host-only.
    app.secret_key = load_or_exit("auth", derive_secret, settings.secret_key_path, "auth-csrf")
    app.config.update(
        SESSION_COOKIE_NAME="__Host-robot_csrf" if settings.cookie_secure else "robot_csrf",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=3600,
    )
    app.extensions["robot_client_key"] = client_key
    app.extensions["robot_atproto_network"] = network_for(settings)
    app.extensions[UPSTREAM_REVOKER] = revoke_with_atproto  # at logout (app/auth/revocation.py)
    app.register_blueprint(auth_views.bp)
    app.register_blueprint(login_views.bp)
    app.register_blueprint(session_views.bp)
    app.extensions["robot_oauth"] = OAuthServer(
        app, platform, authorization_server_metadata(settings)
    )
    consent_key = load_or_exit("auth", derive_secret, settings.secret_key_path, "consent")
    app.extensions["robot_consent_key"] = consent_key.encode()
    app.register_blueprint(oauth_views.bp)
    return app
