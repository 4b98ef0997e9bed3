"""The ATProto OAuth client's protocol steps: discovery, PAR with PKCE, DPoP, token exchange.

Each function follows one section of the ATProto OAuth spec (https://atproto.com/specs/oauth)
and the RFCs it builds on: 9728 (protected resource metadata), 8414 (server metadata), 9126
(PAR), 7636 (PKCE), 9449 (DPoP), 7523 (private_key_jwt client assertions), 9207 (`iss`).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey

from app.core.errors import UpstreamError
from app.core.outbound import Answer
from app.core.outbound import Fetcher
from app.core.signing import SigningKey

SCOPE = "atproto"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# RFC 7523 assertions live briefly: the AS sees them within seconds (AUTH_FACTS: exp ~60 s).
ASSERTION_TTL = 60
# What a server must offer (ATProto OAuth spec, "Authorization Server Metadata").
_REQUIRED_FLAGS = (
    "require_pushed_authorization_requests",
    "authorization_response_iss_parameter_supported",
    "client_id_metadata_document_supported",
)


class AuthorizationServerError(UpstreamError):
    """The user's PDS or authorization server does not do ATProto OAuth as the spec says (502)."""


@dataclass(frozen=True)
class Client:
    """Who we are to the AS: `key` signs private_key_jwt assertions; None = a public client."""

    client_id: str
    redirect_uri: str
    key: SigningKey | None = None
    scope: str = SCOPE


def _origin_of(url: str, fetcher: Fetcher) -> str:
    parts = urlsplit(url)
    allowed = ("https", "http") if fetcher.allow_loopback else ("https",)
    if parts.scheme not in allowed or not parts.netloc or parts.path not in ("", "/"):
        raise AuthorizationServerError(f"{url!r} is not an https origin")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise AuthorizationServerError(f"{url!r} is not an https origin")
    return f"{parts.scheme}://{parts.netloc}".lower()


def authorization_server_of(resource: str, fetcher: Fetcher) -> str:
    """Return the issuer a PDS names in its RFC 9728 protected resource metadata."""
    doc = fetcher.get_json(
        resource + "/.well-known/oauth-protected-resource", "the PDS's OAuth metadata"
    )
    servers = doc.get("authorization_servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], str):
        raise AuthorizationServerError(f"{resource} names no authorization server")
    return _origin_of(servers[0], fetcher)


def authorization_server_metadata(issuer: str, fetcher: Fetcher, client: Client) -> dict:
    """Fetch RFC 8414 metadata of `issuer` and check every requirement of the ATProto spec.

    A confidential `client` needs private_key_jwt with ES256; a public one needs "none".

    Raises AuthorizationServerError naming the first requirement the server misses.
    """
    issuer = _origin_of(issuer, fetcher)
    meta = fetcher.get_json(
        issuer + "/.well-known/oauth-authorization-server", "the authorization server's metadata"
    )

    def require(ok: bool, what: str) -> None:
        if not ok:
            raise AuthorizationServerError(f"the authorization server {issuer} {what}")

    require(meta.get("issuer") == issuer, "names a different issuer in its metadata")
    for flag in _REQUIRED_FLAGS:
        require(meta.get(flag) is True, f"does not declare {flag}")
    lists = {
        "response_types_supported": "code",
        "grant_types_supported": "authorization_code",
        "code_challenge_methods_supported": "S256",
        "token_endpoint_auth_methods_supported": "private_key_jwt" if client.key else "none",
        "dpop_signing_alg_values_supported": "ES256",
        "scopes_supported": SCOPE,
    }
    if client.key is not None:
        lists["token_endpoint_auth_signing_alg_values_supported"] = "ES256"
    for name, value in lists.items():
        offered = meta.get(name)
        require(isinstance(offered, list) and value in offered, f"does not offer {value} ({name})")
    schemes = ("https://", "http://") if fetcher.allow_loopback else ("https://",)
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "pushed_authorization_request_endpoint",
    ):
        endpoint = meta.get(name)
        require(isinstance(endpoint, str) and endpoint.startswith(schemes), f"has no https {name}")
    return meta


def new_pkce() -> tuple[str, str]:
    """Return a PKCE (verifier, S256 challenge) pair (RFC 7636 section 4)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_dpop_key() -> ECKey:
    """A fresh P-256 key for one login's DPoP proofs (ATProto OAuth spec, "DPoP")."""
    return ECKey.generate_key("P-256", private=True)


def dpop_proof(key: ECKey, method: str, url: str, nonce: str | None) -> str:
    """Sign an RFC 9449 DPoP proof JWT for one request (htm, htu without query, jti, iat, nonce)."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    claims = {
        "jti": secrets.token_urlsafe(16),
        "htm": method,
        "htu": url.split("?", 1)[0].split("#", 1)[0],
        "iat": int(time.time()),
    }
    if nonce:
        claims["nonce"] = nonce
    return jwt.encode(header, claims, key)


def client_authentication(client: Client, issuer: str) -> dict:
    """Form fields that authenticate us: client_id, plus an RFC 7523 assertion when confidential.

    The assertion is ES256 with iss = sub = client_id, aud = the issuer, a fresh jti, iat, and
    exp a minute later, signed by the client key and naming its kid.
    """
    fields = {"client_id": client.client_id}
    if client.key is None:
        return fields
    now = int(time.time())
    claims = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": issuer,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + ASSERTION_TTL,
    }
    header = {"alg": "ES256", "kid": client.key.kid}
    fields["client_assertion_type"] = ASSERTION_TYPE
    fields["client_assertion"] = jwt.encode(header, claims, client.key.key)
    return fields


def post_with_dpop(
    fetcher: Fetcher, url: str, form: Callable[[], dict], key: ECKey, nonce: str | None
) -> tuple[Answer, str | None]:
    """POST a form with a DPoP proof; on `use_dpop_nonce` retry once with the server's nonce.

    `form` is called per attempt, so each carries a fresh client assertion (jti is single-use).
    Returns the answer and the newest nonce the server sent (RFC 9449 section 8).
    """
    for attempt in (1, 2):
        headers = {"DPoP": dpop_proof(key, "POST", url, nonce)}
        answer = fetcher.post_form(url, form(), headers)
        nonce = answer.headers.get("dpop-nonce") or nonce
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.status == 400 and body.get("error") == "use_dpop_nonce" and attempt == 1:
            if not answer.headers.get("dpop-nonce"):
                raise AuthorizationServerError(f"{url} asked for a DPoP nonce but sent none")
            continue
        return answer, nonce
    raise AssertionError("unreachable")


def _oauth_failure(answer: Answer, step: str) -> AuthorizationServerError:
    body = answer.body if isinstance(answer.body, dict) else {}
    code = str(body.get("error") or f"HTTP {answer.status}")[:80]
    detail = str(body.get("error_description") or "")[:200]
    return AuthorizationServerError(f"{step} failed: {code}" + (f" ({detail})" if detail else ""))


def push_authorization_request(
    fetcher: Fetcher,
    client: Client,
    meta: dict,
    *,
    state: str,
    challenge: str,
    login_hint: str | None,
    key: ECKey,
) -> tuple[str, str | None]:
    """Send the PAR (RFC 9126) and return (request_uri, DPoP nonce)."""
    params = {
        "response_type": "code",
        "redirect_uri": client.redirect_uri,
        "scope": client.scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint

    def form() -> dict:
        return {**params, **client_authentication(client, meta["issuer"])}

    answer, nonce = post_with_dpop(
        fetcher, meta["pushed_authorization_request_endpoint"], form, key, None
    )
    if answer.status not in (200, 201):
        raise _oauth_failure(answer, "the pushed authorization request")
    request_uri = answer.json_object("the PAR answer").get("request_uri")
    if not isinstance(request_uri, str) or not request_uri:
        raise AuthorizationServerError("the authorization server sent no request_uri")
    return request_uri, nonce


def authorization_url(client: Client, meta: dict, request_uri: str) -> str:
    """The URL that sends the browser to the AS to approve the pushed request."""
    query = urlencode({"client_id": client.client_id, "request_uri": request_uri})
    endpoint = meta["authorization_endpoint"]
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def exchange_code(
    fetcher: Fetcher,
    client: Client,
    meta: dict,
    *,
    code: str,
    verifier: str,
    key: ECKey,
    nonce: str | None,
) -> dict:
    """Redeem an authorization code and check the tokens (ATProto OAuth spec, "Token Request").

    Returns the token answer (access_token, refresh_token, sub, scope, expires_in, ...). Raises
    AuthorizationServerError when token_type is not DPoP, the scope lacks atproto or there is
    no sub; checking sub against the expected DID is the caller's job.
    """
    params = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": verifier,
    }

    def form() -> dict:
        return {**params, **client_authentication(client, meta["issuer"])}

    answer, _ = post_with_dpop(fetcher, meta["token_endpoint"], form, key, nonce)
    if answer.status != 200:
        raise _oauth_failure(answer, "the token request")
    tokens = answer.json_object("the token answer")
    if str(tokens.get("token_type", "")).lower() != "dpop":
        raise AuthorizationServerError("the authorization server did not bind the token to DPoP")
    if SCOPE not in str(tokens.get("scope", "")).split():
        raise AuthorizationServerError("the authorization server did not grant the atproto scope")
    if not isinstance(tokens.get("sub"), str) or not isinstance(tokens.get("access_token"), str):
        raise AuthorizationServerError("the token answer names no account (sub)")
    return tokens


def revoke_token(fetcher: Fetcher, client: Client, meta: dict, token: str, key: ECKey) -> bool:
    """Revoke a token at the AS (RFC 7009) when it offers revocation; True when it said 200."""
    endpoint = meta.get("revocation_endpoint")
    if not isinstance(endpoint, str):
        return False

    def form() -> dict:
        return {"token": token, **client_authentication(client, meta["issuer"])}

    try:
        answer, _ = post_with_dpop(fetcher, endpoint, form, key, None)
    except UpstreamError:  # the AS is down or odd: the session ends here regardless
        return False
    return answer.status == 200
