"""The auth service's documents: key sets, client and server metadata, health."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app

from app.auth import metadata as oauth_metadata
from app.web.flask_app import current_platform
from app.web.flask_app import health_response

bp = Blueprint("auth", __name__, template_folder="templates")

# Public documents are fetched by PDSes, MCP clients and browser-based tools; they hold no secret.
_PUBLIC_DOC_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"}


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
