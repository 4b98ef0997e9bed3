"""The api service (:8002): check-slug, the management JSON API and pages, /static/, /healthz."""

from __future__ import annotations

from flask import Flask

from app.core.settings import Settings
from app.manage import account_pages
from app.manage import account_views
from app.manage import html
from app.manage import internal_views as api_views
from app.manage import pages
from app.manage import views as management_views
from app.manage import wiki_pages
from app.web.flask_app import load_platform
from app.web.flask_app import make_flask_app


def create_app(settings: Settings | None = None) -> Flask:
    """Create the api service's Flask app."""
    platform = load_platform(settings, "api")
    app = make_flask_app(__name__, platform, static_dir=platform.settings.static_dir)
    html.init_app(app, platform.settings)
    app.register_blueprint(api_views.bp)
    app.register_blueprint(management_views.bp)
    app.register_blueprint(account_views.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(wiki_pages.bp)
    app.register_blueprint(account_pages.bp)
    return app
