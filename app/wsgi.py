"""The wiki service (gunicorn 'app.wsgi:create_app()'): every wiki, or one plain Otterwiki."""

from __future__ import annotations

import importlib.util

from app.core.settings import Settings
from app.web.flask_app import load_or_exit


def _missing_otterwiki_app():
    from app.wiki.responses import text_response

    def app(environ, start_response):
        return text_response(503, "otterwiki is not installed")(environ, start_response)

    return app


def create_app(settings: Settings | None = None):
    """Return the wiki service's WSGI app, as MULTI_TENANT and the installed packages allow.

    Bad configuration stops the process with one line (load_or_exit).
    """
    return load_or_exit("otterwiki", _build, settings)


def _build(settings: Settings | None):
    settings = settings or Settings.from_env()
    if importlib.util.find_spec("otterwiki") is None:
        return _missing_otterwiki_app()
    if not settings.multi_tenant:
        from otterwiki.server import app  # the benchmark baseline: configured by its env

        return app
    from app.core.platform import Platform
    from app.wiki import page_api
    from app.wiki.gateway import WikiGateway
    from app.wiki.otterwiki import Tenancy
    from app.wiki.otterwiki import boot_otterwiki
    from app.wiki.otterwiki import install

    platform = Platform.load(settings)
    server = boot_otterwiki(settings)
    install(server, page_api.bp)
    return WikiGateway(platform, Tenancy(server, settings))
