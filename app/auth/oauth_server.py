"""The OAuth 2.1 authorization server MCP clients use, on authlib's Flask server.

Registration of public clients (RFC 7591, app/auth/oauth_clients.py), the authorization code
grant with PKCE S256 only (RFC 7636), rotated refresh tokens (RFC 9700 §4.14), revocation
(RFC 7009: revoke_token ends the whole grant), `iss` in the
authorization response (RFC 9207), resource indicators (RFC 8707: `resource` names one wiki's
MCP URL and becomes the token's `aud`) and RFC 9068 JWT access tokens signed with the platform
key. Storage is the platform store; the views (app/auth/oauth_views.py) add sign-in and consent.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9207 import IssuerParameter

from app.auth.oauth_clients import MAX_URI_LENGTH
from app.auth.oauth_clients import PublicClientRegistration
from app.auth.oauth_clients import RegisteredClient
from app.auth.oauth_errors import quoted
from app.core.errors import Unauthorized
from app.core.identity import READ_SCOPE
from app.core.identity import SCOPES
from app.core.platform import Platform
from app.core.signing import ACCESS_TOKEN_TYP
from app.core.signing import unverified_part
from app.core.slugs import slug_from_host
from app.core.store import AuthorizationCode
from app.core.store import RefreshToken

# RFC 6749 §4.1.2 recommends at most 10 minutes; a client redeems its code within seconds.
CODE_TTL = 300
# A connector stays connected while it is used; a month unused and the user consents again.
REFRESH_TOKEN_TTL = 30 * 24 * 3600


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the `resource` is not one this server issues tokens for."""

    error = "invalid_target"


@dataclass(frozen=True)
class GrantUser:
    """The resource owner of a grant: a platform user, by DID."""

    did: str

    def get_user_id(self) -> str:
        return self.did


@dataclass(frozen=True)
class IssuedCode:
    """authlib's view of a redeemed authorization code."""

    code: AuthorizationCode

    def get_redirect_uri(self) -> str:
        return self.code.data["redirect_uri"]

    def get_scope(self) -> str:
        return self.code.data["scope"]

    @property
    def code_challenge(self) -> str:
        return self.code.data["code_challenge"]

    @property
    def code_challenge_method(self) -> str:
        return self.code.data["code_challenge_method"]


@dataclass(frozen=True)
class SpentRefreshToken:
    """authlib's view of a live refresh token presented at /token; spent only when its
    successor is issued (_TokenIssuer.issue), so a refused request leaves it usable."""

    token: RefreshToken

    def check_client(self, client: RegisteredClient) -> bool:
        return client.client_id == self.token.client_id

    def get_scope(self) -> str:
        return self.token.scope


def resource_slug(platform: Platform, resource: str | None) -> str:
    """Return the wiki slug whose MCP URL is `resource` (RFC 8707), or raise InvalidTargetError.

    The trailing-slash form `{mcp_origin}/mcp/` is accepted as the same resource.
    """
    settings = platform.settings
    if not isinstance(resource, str) or not resource or len(resource) > MAX_URI_LENGTH:
        raise InvalidTargetError("'resource' must be the MCP URL of a wiki, e.g. https://x.../mcp")
    normalised = resource[:-1] if resource.endswith("/mcp/") else resource
    try:
        host = urlsplit(normalised).hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        host = None
    slug = slug_from_host(host, settings.platform_domain) if host else None
    if not slug or normalised != settings.mcp_url(slug) or platform.store.find_wiki(slug) is None:
        raise InvalidTargetError(f"no wiki's MCP endpoint is at {quoted(resource)}")
    return slug


def capped_scope(scope: str, role: str | None) -> str:
    """The part of `scope` a member with `role` may grant: a viewer grants read only."""
    if role == "viewer":
        return READ_SCOPE
    return scope


def asked_resource(request) -> str | None:
    """The one `resource` of an authorization or token request, or None if it names none;
    raise InvalidTargetError for several (RFC 8707 §2 allows several; one wiki per grant here)."""
    asked = request.payload.datalist.get("resource", [])
    if len(asked) > 1:
        raise InvalidTargetError("one 'resource' per request: the wiki's MCP URL")
    return asked[0] if asked else None


class S256CodeChallenge(CodeChallenge):
    """PKCE that every authorization request must use, with S256 only (OAuth 2.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("'code_challenge' is required (PKCE with S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class ResourceIndicator:
    """RFC 8707 on the authorization code grant: `resource` names the wiki, once and for all."""

    def __call__(self, grant):
        grant.register_hook("after_validate_authorization_request_payload", self.at_authorize)
        grant.register_hook("after_validate_token_request", self.at_token)

    def at_authorize(self, grant, redirect_uri):
        request = grant.request
        request.wiki_slug = resource_slug(grant.server.platform, asked_resource(request))

    def at_token(self, grant, result):
        asked = asked_resource(grant.request)
        code = grant.request.authorization_code.code
        if asked and resource_slug(grant.server.platform, asked) != code.wiki_slug:
            raise InvalidTargetError("'resource' differs from the one authorized")


class _TokenIssuer:
    """Mint the RFC 9068 access token for the grant's wiki, and a refresh token to rotate."""

    def issue(self, user: GrantUser, scope: str, slug: str, grant_id: str, rotated_from: str):
        platform = self.server.platform
        settings = platform.settings
        client = self.request.client
        access = platform.key.mint_access_token(
            user.did,
            settings.mcp_url(slug),
            settings.auth_origin,
            scope,
            settings.access_token_ttl,
            client.client_id,
            grant_id,
        )
        token = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": settings.access_token_ttl,
            "scope": scope,
        }
        if client.check_grant_type("refresh_token"):  # what the client registered for
            resource = settings.mcp_url(slug)
            record = RefreshToken(
                rotated_from, grant_id, client.client_id, user.did, slug, scope, resource
            )
            token["refresh_token"] = secrets.token_urlsafe(32)
            if not platform.store.save_refresh_token(
                token["refresh_token"], record, REFRESH_TOKEN_TTL
            ):
                raise InvalidGrantError("the grant was revoked or the refresh token used already")
        return token


class AuthorizationCodeGrant(_TokenIssuer, grants.AuthorizationCodeGrant):
    """The code grant over the platform store; codes are single use and bound to one wiki."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def save_authorization_code(self, code: str, request) -> None:
        store, slug = self.server.platform.store, request.wiki_slug
        role = store.role_of(slug, request.user.did)
        data = {
            "redirect_uri": request.payload.redirect_uri,
            "scope": capped_scope(request.scope, role),
            "resource": self.server.platform.settings.mcp_url(slug),
            "code_challenge": request.payload.data["code_challenge"],
            "code_challenge_method": "S256",
        }
        store.save_authorization_code(
            code, request.client.client_id, request.user.did, slug, data, CODE_TTL
        )

    def query_authorization_code(self, code: str, client) -> IssuedCode | None:
        if not code or len(code) > 200:
            return None
        # The grant outlives its code: it lives as long as a refresh token issued from it.
        redeemed = self.server.platform.store.redeem_authorization_code(
            code, client.client_id, REFRESH_TOKEN_TTL
        )
        return IssuedCode(redeemed) if redeemed else None

    def delete_authorization_code(self, authorization_code) -> None:
        pass  # redeem_authorization_code spent it already, atomically

    def authenticate_user(self, authorization_code: IssuedCode) -> GrantUser | None:
        code = authorization_code.code
        if self.server.platform.store.role_of(code.wiki_slug, code.user_did) is None:
            return None  # removed from the wiki since consenting
        return GrantUser(code.user_did)

    def create_token_response(self):
        code = self.request.authorization_code.code
        user = self.authenticate_user(self.request.authorization_code)
        if user is None:
            raise InvalidGrantError("the user is no longer a member of this wiki")
        scope = code.data["scope"]
        token = self.issue(user, scope, code.wiki_slug, code.code_hash, "")
        return 200, token, self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(_TokenIssuer, grants.RefreshTokenGrant):
    """Refresh with rotation: each refresh token works once; reuse revokes its family."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> SpentRefreshToken | None:
        live = self.server.platform.store.live_refresh_token(refresh_token)
        return SpentRefreshToken(live) if live else None

    def authenticate_user(self, refresh_token: SpentRefreshToken) -> GrantUser | None:
        token = refresh_token.token
        if self.server.platform.store.role_of(token.wiki_slug, token.user_did) is None:
            return None
        return GrantUser(token.user_did)

    def revoke_old_credential(self, refresh_token) -> None:
        pass  # save_refresh_token revokes it as it stores its successor, atomically

    def create_token_response(self):
        presented = self.request.refresh_token.token
        user = self.authenticate_user(self.request.refresh_token)
        if user is None:
            raise InvalidGrantError("the user is no longer a member of this wiki")
        asked = asked_resource(self.request)
        if asked and resource_slug(self.server.platform, asked) != presented.wiki_slug:
            raise InvalidTargetError("'resource' differs from the one authorized")
        role = self.server.platform.store.role_of(presented.wiki_slug, user.did)
        scope = capped_scope(self.request.payload.scope or presented.scope, role)
        token = self.issue(
            user, scope, presented.wiki_slug, presented.grant_id, presented.token_hash
        )
        return 200, token, self.TOKEN_RESPONSE_HEADER


class PlatformIssuer(IssuerParameter):
    """RFC 9207: every authorization response names this server as `iss`."""

    def __init__(self, issuer: str):
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class OAuthServer(AuthorizationServer):
    """authlib's Flask authorization server over the platform: clients, codes, tokens."""

    def __init__(self, app, platform: Platform, metadata: dict):
        super().__init__()
        self.platform = platform
        self.metadata = metadata
        self.init_app(app, query_client=self._find_client, save_token=_tokens_saved_on_issue)
        self.scopes_supported = SCOPES
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(), ResourceIndicator()])
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(PublicClientRegistration)
        self.register_extension(PlatformIssuer(platform.settings.auth_origin))

    def _find_client(self, client_id) -> RegisteredClient | None:
        if not isinstance(client_id, str):
            return None
        metadata = self.platform.store.find_oauth_client(client_id)
        return RegisteredClient(client_id, metadata) if metadata is not None else None

    def find_client(self, client_id) -> RegisteredClient | None:
        """The registered client `client_id`, or None."""
        return self._find_client(client_id)


def revoke_token(platform: Platform, client_id: str, token: str) -> bool:
    """Revoke the grant `token` (a refresh token or an access token of ours) was issued under,
    if it was issued to client `client_id` (RFC 7009 §2.1); True if a grant was revoked.

    Revoking either kind ends the whole grant: its refresh tokens and, at their next use, its
    access tokens (RFC 7009 §2.1 allows both). An unknown, expired or malformed token, or one
    of another client, is left alone and answers False: the endpoint answers 200 either way,
    so a caller learns nothing about tokens that are not its own.
    """
    grant = _access_token_grant(platform, token) if "." in token else None
    if grant is None:
        grant = platform.store.refresh_token_grant(token)
    if grant is None or grant[1] != client_id:
        return False
    return platform.store.revoke_oauth_grant(grant[0], client_id)


def _access_token_grant(platform: Platform, token: str) -> tuple[str, str] | None:
    """(grant id, client id) of a valid access token we signed, else None. Its `aud` is read
    before verification only to pick the wiki to verify it for; verify checks the rest."""
    payload = unverified_part(token, 1)
    audience = payload.get("aud") if payload is not None else None
    if not isinstance(audience, str):
        return None
    settings = platform.settings
    try:
        claims = platform.key.verify(token, ACCESS_TOKEN_TYP, audience, settings.auth_origin)
    except Unauthorized:
        return None
    grant, client = claims.get("grant"), claims.get("client_id")
    if not isinstance(grant, str) or not isinstance(client, str):
        return None
    return grant, client


def _tokens_saved_on_issue(token, request) -> None:
    """Refresh tokens are stored as they are minted (_TokenIssuer); access tokens never are."""
