"""The auth service (:8003): key sets, OAuth metadata and server, the login page, /healthz."""

from __future__ import annotations

from flask import Flask

from app.auth import oauth_views
from app.auth import views as auth_views
from app.auth.metadata import authorization_server_metadata
from app.auth.oauth_server import OAuthServer
from app.core.settings import Settings
from app.core.signing import SigningKey
from app.core.signing import derive_secret
from app.web.flask_app import load_or_exit
from app.web.flask_app import load_platform
from app.web.flask_app import make_flask_app


def create_app(settings: Settings | None = None) -> Flask:
    """Create the auth service's Flask app."""
    platform = load_platform(settings, "auth")
    client_key = load_or_exit("auth", SigningKey.load, platform.settings.client_key_path)
    app = make_flask_app(__name__, platform)
    app.extensions["robot_client_key"] = client_key
    app.register_blueprint(auth_views.bp)
    metadata = authorization_server_metadata(platform.settings)
    app.extensions["robot_oauth"] = OAuthServer(app, platform, metadata)
    consent_key = load_or_exit("auth", derive_secret, platform.settings.secret_key_path, "consent")
    app.extensions["robot_consent_key"] = consent_key.encode()
    app.register_blueprint(oauth_views.bp)
    return app
