"""The api service's own routes: Caddy's on-demand TLS question and the health check."""

from __future__ import annotations

from flask import Blueprint
from flask import request

from app.manage.service import wiki_for_domain
from app.web.flask_app import current_platform
from app.web.flask_app import health_response

bp = Blueprint("api", __name__)


@bp.get("/api/internal/check-slug")
def check_slug():
    platform = current_platform()
    slug = wiki_for_domain(platform.settings, platform.store, request.args.get("domain"))
    return {"ok": True, "slug": slug}


@bp.get("/healthz")
def healthz():
    platform = current_platform()
    settings = platform.settings
    return health_response(
        {
            "database": platform.store.health_problem,
            "wikis": lambda: (
                None if settings.wiki_base.is_dir() else f"{settings.wiki_base} missing"
            ),
            "static": lambda: (
                None if settings.static_dir.is_dir() else f"{settings.static_dir} missing"
            ),
        }
    )
