"""The auth service's public documents: ATProto client metadata and RFC 8414 server metadata."""

from __future__ import annotations

from app.core.identity import SCOPES
from app.core.settings import Settings

CLIENT_METADATA_PATH = "/auth/client-metadata.json"
CLIENT_JWKS_PATH = "/auth/client-jwks.json"
CALLBACK_PATH = "/auth/callback"
PLATFORM_JWKS_PATH = "/.well-known/jwks.json"
# Logging in needs only the DID proven by the user's PDS; we ask for no access to their data.
ATPROTO_SCOPE = "atproto"


def client_id(settings: Settings) -> str:
    """Return the platform's ATProto client_id: the URL of its own metadata document."""
    return settings.auth_origin + CLIENT_METADATA_PATH


def client_metadata(settings: Settings) -> dict:
    """Return the ATProto OAuth client metadata of this platform (a confidential web client).

    Only an https deployment (no port) yields a client_id a PDS accepts; a local http run needs
    ATProto's loopback client (client_id http://localhost?...) instead.
    """
    origin = settings.auth_origin
    return {
        "client_id": client_id(settings),
        "client_name": f"robot ({settings.platform_domain})",
        "client_uri": settings.api_origin,
        "application_type": "web",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": ATPROTO_SCOPE,
        "response_types": ["code"],
        "redirect_uris": [origin + CALLBACK_PATH],
        "dpop_bound_access_tokens": True,
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks_uri": origin + CLIENT_JWKS_PATH,
    }


def authorization_server_metadata(settings: Settings) -> dict:
    """Return the RFC 8414 metadata of the authorization server MCP clients use."""
    issuer = settings.auth_origin
    return {
        "issuer": issuer,
        # Under /auth/, which a reverse proxy sends to the auth service with the rest of the apex
        # sign-in routes; the auth service answers the bare /authorize, /token, /register and
        # /revoke too.
        "authorization_endpoint": issuer + "/auth/authorize",
        "token_endpoint": issuer + "/auth/token",
        "registration_endpoint": issuer + "/auth/register",
        # RFC 7009: a client revokes its grant with a refresh or access token (no secret).
        "revocation_endpoint": issuer + "/auth/revoke",
        "revocation_endpoint_auth_methods_supported": ["none"],
        "jwks_uri": issuer + PLATFORM_JWKS_PATH,
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
    }
