"""The auth service's routes: key sets, client and server metadata, the login page, health."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import render_template
from flask import request

from app.auth import metadata as oauth_metadata
from app.web.flask_app import current_platform
from app.web.flask_app import health_response
from app.web.session_cookie import cookie_name

bp = Blueprint("auth", __name__, template_folder="templates")

# Public documents are fetched by PDSes, MCP clients and browser-based tools; they hold no secret.
_PUBLIC_DOC_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"}
# The login page loads only our stylesheet and runs nothing.
_PAGE_CSP = (
    "default-src 'none'; style-src {origin}; base-uri 'none'; frame-ancestors 'none';"
    " form-action 'self'"
)
MAX_NEXT_URL = 500


def _client_key():
    return current_app.extensions["robot_client_key"]


@bp.get("/.well-known/jwks.json")
def platform_jwks():
    return current_platform().key.jwks(), _PUBLIC_DOC_HEADERS


@bp.get(oauth_metadata.CLIENT_JWKS_PATH)
def client_jwks():
    return _client_key().jwks(), _PUBLIC_DOC_HEADERS


@bp.get(oauth_metadata.CLIENT_METADATA_PATH)
def client_metadata():
    return oauth_metadata.client_metadata(current_platform().settings), _PUBLIC_DOC_HEADERS


@bp.get("/.well-known/oauth-authorization-server")
def authorization_server_metadata():
    settings = current_platform().settings
    return oauth_metadata.authorization_server_metadata(settings), _PUBLIC_DOC_HEADERS


@bp.get("/auth/login")
def login():
    settings = current_platform().settings
    page = render_template(
        "auth/login_unavailable.html",
        domain=settings.platform_domain,
        stylesheet=settings.api_origin + "/static/robot.css",
        cookie=cookie_name(settings),
        cookie_domain=None,
        next_url=request.args.get("next", "")[:MAX_NEXT_URL],
    )
    headers = {
        "Content-Security-Policy": _PAGE_CSP.format(origin=settings.api_origin),
        "Cache-Control": "no-store",
    }
    return page, 200, headers


@bp.get("/healthz")
def healthz():
    platform = current_platform()
    client_key_path = platform.settings.client_key_path
    return health_response(
        {
            "database": platform.store.health_problem,
            "client_key": lambda: (
                None if client_key_path.is_file() else f"{client_key_path} missing"
            ),
        }
    )
