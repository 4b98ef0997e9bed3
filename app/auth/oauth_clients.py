"""The clients of the OAuth server: public MCP clients registered by anyone through RFC 7591."""

from __future__ import annotations

import ipaddress
import secrets
import time
import unicodedata
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7591 import InvalidClientMetadataError

from app.auth.oauth_errors import quoted
from app.core.identity import SCOPES

# Registration is open to anyone: keep what one registration may store small.
MAX_REDIRECT_URIS = 10
MAX_URI_LENGTH = 2000
MAX_CLIENT_NAME = 200
LOOPBACK_HOSTS = ("localhost",)
# What a registration gets when it names no grant types: the code grant and refreshing.
GRANT_TYPES = ["authorization_code", "refresh_token"]
# The RFC 7591 §2 fields a public client may register, by JSON type; the rest (keys, software
# statements, unknown fields) are dropped, as §2 allows.
TEXT_FIELDS = (
    "client_name",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "scope",
    "token_endpoint_auth_method",
    "software_id",
    "software_version",
)
LIST_FIELDS = ("redirect_uris", "grant_types", "response_types", "contacts")


class RegisteredClient(ClientMixin):
    """A public client registered through /register; `metadata` as RFC 7591 §2 names it."""

    def __init__(self, client_id: str, metadata: dict):
        self.client_id = client_id
        self.metadata = metadata

    @property
    def name(self) -> str:
        return self.metadata.get("client_name") or self.client_id

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.metadata.get("redirect_uris", [])
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        # ChatGPT may omit scope on reconnect: then the wiki's supported scopes.
        asked = [s for s in scope_to_list(scope or "") or SCOPES if s in SCOPES]
        return " ".join(s for s in SCOPES if s in asked)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.metadata.get("redirect_uris", [])  # exact match only

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # public clients have none

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.metadata.get("grant_types", GRANT_TYPES)


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def displayable(text: str) -> bool:
    """Whether `text` reads on a page as it is: no control character (C0, DEL, C1), no format
    character (Unicode category Cf: bidi overrides and isolates U+202A-202E, U+2066-2069,
    zero-width joiners...) that could make the consent page say something else."""
    return not any(unicodedata.category(c) in ("Cc", "Cf") for c in text)


def check_redirect_uri(uri) -> str:
    """Return `uri` if it may receive codes: https, or http on loopback; no fragment (RFC 6749
    §3.1.2); printable ASCII without spaces that a URL parser gives back unchanged (urlsplit
    drops CR, LF and tabs, so the code would go elsewhere than the URI registered). Raise
    InvalidClientMetadataError otherwise."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_LENGTH:
        raise InvalidClientMetadataError(
            f"redirect URIs are text of 1 to {MAX_URI_LENGTH} characters"
        )
    if not all("!" <= c <= "~" for c in uri):
        raise InvalidClientMetadataError(
            f"{quoted(uri)} must be printable ASCII without spaces (percent-encode the rest)"
        )
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        raise InvalidClientMetadataError(f"{quoted(uri)} is not a URL") from None
    if urlunsplit(parts) != uri:
        raise InvalidClientMetadataError(f"{quoted(uri)} does not read back the same as a URL")
    if parts.fragment or "#" in uri or not host:
        raise InvalidClientMetadataError(f"{quoted(uri)} must be absolute, without a fragment")
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host)):
        return uri
    raise InvalidClientMetadataError(
        f"{quoted(uri)} must use https (plain http only on a loopback address)"
    )


def _typed_fields(data) -> dict:
    """The registrable fields of `data`, each of its JSON type (text, or a short list of text);
    raise InvalidClientMetadataError for a field of the wrong type or size."""
    if not isinstance(data, dict):
        raise InvalidClientMetadataError("the body must be a JSON object")
    kept = {}
    for name in TEXT_FIELDS:
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_URI_LENGTH):
            raise InvalidClientMetadataError(
                f"'{name}' must be text of at most {MAX_URI_LENGTH} characters"
            )
        if value is not None and not displayable(value):
            raise InvalidClientMetadataError(
                f"'{name}' must not hold control or invisible formatting characters"
            )
        if value is not None:
            kept[name] = value
    for name in LIST_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or len(value) > MAX_REDIRECT_URIS:
            raise InvalidClientMetadataError(
                f"'{name}' must be a list of at most {MAX_REDIRECT_URIS} items"
            )
        if not all(isinstance(item, str) and len(item) <= MAX_URI_LENGTH for item in value):
            raise InvalidClientMetadataError(
                f"'{name}' must list text of at most {MAX_URI_LENGTH} characters each"
            )
        if not all(displayable(item) for item in value):
            raise InvalidClientMetadataError(
                f"'{name}' must not hold control or invisible formatting characters"
            )
        kept[name] = value
    return kept


class PublicClientRegistration(ClientRegistrationEndpoint):
    """RFC 7591 registration, open to anyone, of public clients (no secret, PKCE instead)."""

    def authenticate_token(self, request):
        return True  # open registration, as MCP clients expect

    def get_server_metadata(self) -> dict:
        return self.server.metadata

    def extract_client_metadata(self, request) -> dict:
        data = _typed_fields(request.payload.data)
        data.setdefault("token_endpoint_auth_method", "none")
        if not data.get("redirect_uris"):
            raise InvalidClientMetadataError("'redirect_uris' must list the client's redirect URIs")
        for uri in data["redirect_uris"]:
            check_redirect_uri(uri)
        if len(data.get("client_name", "")) > MAX_CLIENT_NAME:
            raise InvalidClientMetadataError(
                f"'client_name' must be text of at most {MAX_CLIENT_NAME} characters"
            )
        request.payload.data.clear()
        request.payload.data.update(data)
        metadata = super().extract_client_metadata(request)
        metadata.setdefault("grant_types", list(GRANT_TYPES))
        metadata.setdefault("response_types", ["code"])
        return metadata

    def generate_client_info(self, request) -> dict:
        return {
            "client_id": "mcp_" + secrets.token_urlsafe(24),
            "client_id_issued_at": int(time.time()),
        }

    def save_client(self, client_info, client_metadata, request) -> RegisteredClient:
        client_id = client_info["client_id"]
        self.server.platform.store.save_oauth_client(client_id, client_metadata)
        return RegisteredClient(client_id, client_metadata)
