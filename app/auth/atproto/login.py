"""One sign-in from start to finish: resolve the account, push the request, redeem the code.

The steps follow the ATProto OAuth spec (https://atproto.com/specs/oauth), "Authorization
Flow"; login requests wait in the platform DB under their `state` for at most ten minutes.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode
from urllib.parse import urlsplit

from joserfc.jwk import ECKey

from app.auth import metadata
from app.auth.atproto import oauth
from app.core.atproto_identity import INVALID_HANDLE
from app.core.atproto_identity import Identity
from app.core.atproto_identity import Network
from app.core.atproto_identity import classify_input
from app.core.atproto_identity import identity_for_did
from app.core.atproto_identity import identity_for_handle
from app.core.errors import BadRequest
from app.core.outbound import Fetcher
from app.core.outbound import OutboundError
from app.core.settings import Settings
from app.core.signing import SigningKey
from app.core.store import Store

# A person approves within minutes; an older request is stale (and purged when a login starts).
LOGIN_REQUEST_TTL = 600  # seconds


class SignInError(BadRequest):
    """The sign-in cannot go on because of what the browser sent or did (400)."""


@dataclass(frozen=True)
class SignedIn:
    """A verified sign-in: the account, the ATProto tokens (for revocation), where to go next."""

    did: str
    handle: str
    upstream: dict
    return_to: str | None
    # The hash of the sign-in cookie of the browser that started this sign-in (see finish_login).
    browser: str | None = None


def client_for(settings: Settings, client_key: SigningKey) -> oauth.Client:
    """Our client identity: ATProto's loopback client on localhost, else the confidential one.

    ATProto OAuth spec, "Localhost Client Development": client_id http://localhost?... is a
    public client whose redirect URI must be on 127.0.0.1.
    """
    if settings.platform_domain == "localhost":
        redirect_uri = f"http://127.0.0.1:{settings.auth_port}{metadata.CALLBACK_PATH}"
        query = urlencode({"redirect_uri": redirect_uri, "scope": oauth.SCOPE})
        return oauth.Client(f"http://localhost?{query}", redirect_uri)
    redirect_uri = settings.auth_origin + metadata.CALLBACK_PATH
    return oauth.Client(metadata.client_id(settings), redirect_uri, client_key)


def _issuer_for_server(url: str, fetcher: Fetcher) -> str:
    """A typed server URL is a PDS (its protected resource metadata names the AS) or the AS."""
    parts = urlsplit(url)
    schemes = ("https", "http") if fetcher.allow_loopback else ("https",)
    # What is the user's to fix is 400: a user name or password, a fragment, no host at all
    # (the authorization server's own answer is judged later, and its faults are 502).
    typed_wrong = parts.query or parts.fragment or "@" in parts.netloc or not parts.hostname
    if parts.scheme not in schemes or parts.path not in ("", "/") or typed_wrong:
        raise BadRequest(
            f"type your server as https://host, without a path, a user or a password ({url[:80]!r})"
        )
    try:
        return oauth.authorization_server_of(url.rstrip("/"), fetcher)
    except OutboundError:
        return url.rstrip("/")


def start_login(
    store: Store,
    network: Network,
    client: oauth.Client,
    text: str,
    return_to: str | None,
    browser: str | None = None,
) -> str:
    """Begin a sign-in for `text` (handle, DID or server URL); return the AS URL to visit.

    `browser` is a hash of a secret only the starting browser holds (a cookie); finish_login
    can then refuse a callback opened by any other browser (login CSRF, RFC 6749 §10.12).

    Raises BadRequest (400) for input that names no account, OutboundError (502/504) or
    oauth.AuthorizationServerError (502) when the user's PDS or AS fails.
    """
    store.purge_login_requests(int(time.time()) - LOGIN_REQUEST_TTL)
    kind, value = classify_input(text)
    identity: Identity | None = None
    if kind == "handle":
        identity = identity_for_handle(value, network)
    elif kind == "did":
        identity = identity_for_did(value, network)
    if identity is not None:
        issuer = oauth.authorization_server_of(identity.pds, network.fetcher)
    else:
        issuer = _issuer_for_server(value, network.fetcher)
    meta = oauth.authorization_server_metadata(issuer, network.fetcher, client)
    verifier, challenge = oauth.new_pkce()
    dpop_key = oauth.new_dpop_key()
    state = secrets.token_urlsafe(24)
    hint = None if identity is None else (value if kind == "handle" else identity.did)
    request_uri, nonce = oauth.push_authorization_request(
        network.fetcher,
        client,
        meta,
        state=state,
        challenge=challenge,
        login_hint=hint,
        key=dpop_key,
    )
    store.save_login_request(
        state,
        {
            "issuer": meta["issuer"],
            "token_endpoint": meta["token_endpoint"],
            "revocation_endpoint": meta.get("revocation_endpoint"),
            "did": identity.did if identity else None,
            "handle": identity.handle if identity else None,
            "pds": identity.pds if identity else None,
            "verifier": verifier,
            "dpop_key": dpop_key.as_dict(private=True),
            "dpop_nonce": nonce,
            "return_to": return_to,
            "browser": browser,
        },
    )
    return oauth.authorization_url(client, meta, request_uri)


def finish_login(
    store: Store,
    network: Network,
    client: oauth.Client,
    args,
    browser: str | None = None,
    check_browser: bool = True,
) -> SignedIn:
    """Handle the redirect back from the AS (`args`: its query parameters); verify everything.

    With `check_browser`, the callback must come from the browser that started the sign-in
    (`browser`, the hash of its sign-in cookie, equals the one start_login stored); without it
    (the loopback client's callback lands on another host than the cookie's), the stored hash
    is returned in SignedIn.browser for the next hop to check.

    The login request is deleted first, so a replayed callback finds nothing. Raises
    SignInError (400) for an unknown, used or stale request, a wrong `iss`, a refusal at the
    AS or a token for another account; AuthorizationServerError/OutboundError when the AS fails.
    """
    taken = store.take_login_request(str(args.get("state") or ""))
    if taken is None:
        raise SignInError("this sign-in is unknown or was already used; please start again")
    data, created_at = taken
    if created_at < time.time() - LOGIN_REQUEST_TTL:
        raise SignInError("this sign-in took too long and has expired; please start again")
    expected_browser = data.get("browser")
    if check_browser and not same_browser(expected_browser, browser):
        raise SignInError(
            "this sign-in was started in another browser; start it again from this one"
        )
    issuer = data["issuer"]
    if args.get("iss") != issuer:
        raise SignInError("the answer did not come from the server the sign-in started at")
    if args.get("error"):
        if args.get("error") == "access_denied":
            raise SignInError(f"the sign-in was not approved at {issuer}")
        raise SignInError(f"{issuer} refused the sign-in ({str(args.get('error'))[:80]})")
    code = args.get("code")
    if not code or len(code) > 2048:
        raise SignInError("the answer from the server carried no authorization code")
    meta = {"issuer": issuer, "token_endpoint": data["token_endpoint"]}
    dpop_key = ECKey.import_key(data["dpop_key"])
    tokens = oauth.exchange_code(
        network.fetcher,
        client,
        meta,
        code=code,
        verifier=data["verifier"],
        key=dpop_key,
        nonce=data["dpop_nonce"],
    )
    identity = _verified_account(data, tokens["sub"], network)
    upstream = {
        "issuer": issuer,
        "pds": identity.pds,
        "client_id": client.client_id,
        # A refresh or revocation must authenticate with the same client key (AUTH_FACTS).
        "client_kid": client.key.kid if client.key is not None else None,
        "token_endpoint": data["token_endpoint"],
        "revocation_endpoint": data["revocation_endpoint"],
        "access_token": tokens["access_token"],
        "refresh_token": tokens.get("refresh_token"),
        "expires_at": _expiry(tokens.get("expires_in")),
        "dpop_key": data["dpop_key"],
    }
    return SignedIn(identity.did, identity.handle, upstream, data["return_to"], expected_browser)


def same_browser(expected: str | None, presented: str | None) -> bool:
    """Whether a presented sign-in cookie hash matches the stored one (constant time)."""
    return bool(expected) and bool(presented) and hmac.compare_digest(expected, presented)


def record_user(store: Store, signed: SignedIn) -> str:
    """Create or update the user of a verified sign-in; return the handle recorded.

    The handle is refreshed at each sign-in; one that does not verify today (INVALID_HANDLE)
    keeps the handle already known, if any.
    """
    handle = signed.handle
    if handle == INVALID_HANDLE:
        known = store.find_user(signed.did)
        handle = known.handle if known is not None else handle
    return store.upsert_user(signed.did, handle, signed_in=True).handle


def _verified_account(data: dict, sub: str, network: Network) -> Identity:
    """The account the tokens are for: `sub` must be the DID the sign-in resolved; from a
    server URL, `sub` is resolved now and its PDS must name the same AS (spec, "Token")."""
    if data["did"] is not None:
        if sub != data["did"]:
            raise SignInError("the server signed in a different account than the one asked for")
        return Identity(data["did"], data["handle"], data["pds"])
    identity = identity_for_did(sub, network)
    if oauth.authorization_server_of(identity.pds, network.fetcher) != data["issuer"]:
        raise SignInError("the server signed in an account it is not the authority for")
    return identity


def revoke_upstream(network: Network, client: oauth.Client, upstream: dict) -> bool:
    """Revoke the ATProto refresh (else access) token of one sign-in at its AS, at logout.

    `upstream` is the dict finish_login made (kept with the session). Best effort (RFC 7009):
    returns True when the AS confirmed, False when it offers no revocation or failed.
    """
    meta = {
        "issuer": upstream["issuer"],
        "revocation_endpoint": upstream.get("revocation_endpoint"),
    }
    token = upstream.get("refresh_token") or upstream.get("access_token")
    key = ECKey.import_key(upstream["dpop_key"])
    return bool(token) and oauth.revoke_token(network.fetcher, client, meta, token, key)


def _expiry(expires_in) -> int | None:
    return int(time.time()) + expires_in if isinstance(expires_in, int) else None
