"""The platform signing key: create it once, publish it as JWKS, sign and verify ES256 JWTs.

Session JWTs and MCP access tokens are both signed here and told apart by `typ` and `aud`, so
neither can stand in for the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from app.core.errors import ConfigError
from app.core.errors import Unauthorized

ALGORITHM = "ES256"
SESSION_TYP = "robot-session+jwt"
ACCESS_TOKEN_TYP = "at+jwt"  # RFC 9068
SESSION_AUDIENCE = "robot:session"
# JWTs longer than this are garbage or an attack; refuse before parsing.
MAX_JWT_LENGTH = 8192


def unverified_part(token: str, index: int) -> dict | None:
    """Decode part `index` (0 header, 1 claims) of a compact JWS without checking its signature.

    Only for choosing how to verify (which audience, which token kind); never trust what it
    returns. Returns the JSON object, or None for anything malformed: not three parts, longer
    than MAX_JWT_LENGTH, bad base64url, bad UTF-8 or JSON, nesting too deep for the parser
    (RecursionError, which a 4 KB token of brackets reaches), or JSON that is not an object.
    """
    parts = token.split(".")
    if len(parts) != 3 or len(token) > MAX_JWT_LENGTH:
        return None
    part = parts[index]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, TypeError, RecursionError, binascii.Error):
        return None
    return decoded if isinstance(decoded, dict) else None


def ensure_signing_key(path: Path) -> bool:
    """Create an EC P-256 key at `path` (mode 0600) unless one exists; return True if created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ECKey.generate_key("P-256", private=True).as_pem(private=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return True


class SigningKey:
    """The platform's EC key, with its RFC 7638 thumbprint as `kid`."""

    def __init__(self, key: ECKey):
        self.key = key
        self.kid = key.thumbprint()

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            key = ECKey.import_key(path.read_bytes())
        except FileNotFoundError:
            raise ConfigError(f"signing key {path} is missing: run 'robot init'") from None
        except (ValueError, JoseError) as error:
            raise ConfigError(f"signing key {path} is not an EC private key: {error}") from None
        if key.as_dict(private=False).get("crv") != "P-256":
            raise ConfigError(f"signing key {path} is not on curve P-256")
        return cls(key)

    def jwks(self) -> dict:
        public = self.key.as_dict(private=False)
        return {"keys": [{**public, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}]}

    def sign(self, claims: dict, typ: str) -> str:
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": typ}
        return jwt.encode(header, claims, self.key)

    def verify(self, token: str, typ: str, audience: str, issuer: str | None = None) -> dict:
        """Return the claims of a valid, unexpired JWT of type `typ` for `audience`.

        Raise Unauthorized saying what is wrong otherwise.
        """
        if not token or len(token) > MAX_JWT_LENGTH or token.count(".") != 2:
            raise Unauthorized("malformed token")
        try:
            decoded = jwt.decode(token, self.key, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError):
            raise Unauthorized("invalid token signature or encoding") from None
        if decoded.header.get("typ") != typ:
            raise Unauthorized("wrong kind of token")
        claims = decoded.claims
        expected = {
            "exp": {"essential": True},
            "sub": {"essential": True},
            "aud": {"essential": True, "value": audience},
        }
        if issuer is not None:
            expected["iss"] = {"essential": True, "value": issuer}
        try:
            jwt.JWTClaimsRegistry(leeway=30, **expected).validate(claims)
        except JoseError as error:
            raise Unauthorized(f"token rejected: {error.description or error.error}") from None
        return claims

    def mint_session(self, did: str, handle: str, issuer: str, ttl: int) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": did,
            "aud": SESSION_AUDIENCE,
            "handle": handle,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(12),
        }
        return self.sign(claims, SESSION_TYP)

    def verify_session(self, token: str, issuer: str) -> dict:
        return self.verify(token, SESSION_TYP, SESSION_AUDIENCE, issuer)

    def mint_access_token(
        self,
        did: str,
        audience: str,
        issuer: str,
        scope: str,
        ttl: int,
        client_id: str,
        grant: str,
    ) -> str:
        """Sign an OAuth access token for one MCP resource (one wiki). `grant` names the
        grant it was issued under (Store.oauth_grant_live): revoking that stops the token."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": did,
            "aud": audience,
            "scope": scope,
            "client_id": client_id,
            "grant": grant,
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(12),
        }
        return self.sign(claims, ACCESS_TOKEN_TYP)


def ensure_secret(path: Path) -> bool:
    """Create a random secret file (mode 0600) unless one exists; return True if created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    return True


def derive_secret(path: Path, purpose: str) -> str:
    """Return a stable secret for `purpose` (e.g. one wiki's Flask SECRET_KEY) from the file."""
    try:
        master = path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"secret file {path} is missing: run 'robot init'") from None
    if len(master) < 32:
        raise ConfigError(f"secret file {path} is too short")
    return hmac.new(master.encode(), purpose.encode(), hashlib.sha256).hexdigest()
