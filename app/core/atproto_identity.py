"""Resolve what a person typed (handle, DID or server URL) to a verified DID, handle and PDS.

Sign-in (app.auth) and adding collaborators (app.manage) both use it, hence its place in core.

Follows the ATProto specs: Handle (https://atproto.com/specs/handle), DID
(https://atproto.com/specs/did) and the OAuth identity steps
(https://atproto.com/specs/oauth#identity-authentication).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from app.core.errors import BadRequest
from app.core.outbound import Fetcher
from app.core.outbound import OutboundError
from app.core.settings import Settings

# Handle spec: "Handle Identifier Syntax"; at most 253 characters in all.
HANDLE_PATTERN = re.compile(
    r"([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
)
MAX_HANDLE = 253
# Handle spec: top-level domains that can never be a handle (.test stays allowed for testing).
DISALLOWED_TLDS = {"alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion"}
# DID spec: "DID Syntax"; at most 2 KiB.
DID_PATTERN = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
MAX_DID = 2048
# The blessed methods: did:plc (a 24-character base32 id) and did:web (a bare hostname).
PLC_PATTERN = re.compile(r"did:plc:[a-z2-7]{24}")
# A did:web names a host by its DNS name, lower-case (DNS is not: `EVIL.COM` would be another
# user), of two labels or more ending in a name (no address: 127.0.0.1, 169.254.169.254), or
# `localhost` with a port, which ATProto allows for testing; no other port, no path
# (twenty-seventh review: `did:web:.`, `did:web:-evil.com`, `did:web:localhost` were stored).
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
WEB_PATTERN = re.compile(
    rf"did:web:(?:{_DNS_LABEL}\.)+[a-z](?:[a-z0-9-]{{0,61}}[a-z0-9])?"
    r"|did:web:localhost%3[aA](?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}"
    r"|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
)
# What a user row may be keyed by (check_user_did): a blessed method, a did:web naming a bare
# host, and a did:plc whose id is lower-case letters, digits and inner hyphens. Looser than
# PLC_PATTERN only in length and alphabet, for the short ids of instances made by hand (the
# README's own `robot user add --did did:plc:alice`) and the test suite's fixtures.
USER_PLC_PATTERN = re.compile(r"did:plc:[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?")
# What the Handle spec says to show when a DID's handle does not resolve back to it.
INVALID_HANDLE = "handle.invalid"
MAX_INPUT = 512

TxtLookup = Callable[[str], list[str]]


@dataclass(frozen=True)
class Identity:
    """A verified account: its DID, its handle (or INVALID_HANDLE) and its PDS's https URL."""

    did: str
    handle: str
    pds: str


@dataclass(frozen=True)
class Network:
    """How sign-in reaches the ATProto network: HTTP, DNS TXT lookups and the PLC directory."""

    fetcher: Fetcher
    txt_lookup: TxtLookup
    plc_url: str


def dns_txt_lookup(nameservers: list[str] | None = None, port: int = 53) -> TxtLookup:
    """Return a TXT lookup over DNS (dnspython, 3 s per name): the system's resolvers, or
    `nameservers` on `port`. The lookup returns the TXT strings at a name, [] when none."""
    import dns.exception
    import dns.resolver

    try:
        resolver = dns.resolver.Resolver(configure=nameservers is None)
    except dns.exception.DNSException:  # no resolv.conf: handles resolve by HTTPS only
        return lambda name: []
    if nameservers is not None:
        resolver.nameservers, resolver.port = nameservers, port
    resolver.lifetime = 3.0

    def lookup(name: str) -> list[str]:
        try:
            answer = resolver.resolve(name, "TXT")
        except (dns.exception.DNSException, UnicodeError, ValueError):
            return []
        return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]

    return lookup


def network_for(settings: Settings) -> Network:
    """The real network: SSRF-safe HTTP, DNS TXT by dnspython, the configured PLC directory."""
    fetcher = Fetcher(allow_loopback=settings.atproto_allow_insecure_loopback)
    return Network(fetcher, dns_txt_lookup(), settings.atproto_plc_url)


def classify_input(text: str) -> tuple[str, str]:
    """Split sign-in input into ("handle" | "did" | "url", normalised value).

    Strips whitespace and a leading '@', lower-cases handles. Raises BadRequest in plain words
    when the text is none of the three.
    """
    value = unicodedata.normalize("NFC", (text or "").strip())
    if not value:
        raise BadRequest("type your handle (such as alice.bsky.social), your DID or your server")
    if len(value) > MAX_INPUT or any(unicodedata.category(c)[0] == "C" for c in value):
        raise BadRequest("that is not a handle, a DID or a server address")
    if value.startswith(("https://", "http://")):
        return "url", value.rstrip("/")
    if value.startswith("did:"):
        check_did(value)
        return "did", value
    handle = value.removeprefix("@").lower()
    check_handle(handle)
    return "handle", handle


def is_handle_syntax(handle: object) -> bool:
    """Tell whether `handle` is a string of the Handle spec's syntax (any TLD, any case)."""
    return (
        isinstance(handle, str)
        and len(handle) <= MAX_HANDLE
        and bool(HANDLE_PATTERN.fullmatch(handle))
    )


def check_handle_syntax(handle: object) -> None:
    """Raise BadRequest unless `handle` has the Handle spec's syntax.

    Weaker than `check_handle`: INVALID_HANDLE, what a sign-in records for an account whose
    handle does not verify, passes. What the platform stores as a user's handle must pass it:
    a handle stored unchecked (`<img src=x onerror=alert(1)>.example` from `robot user add`)
    became the name of every commit of that user, which git refused (twenty-fifth review).
    """
    if not is_handle_syntax(handle):
        shown = handle[:80] if isinstance(handle, str) else handle
        raise BadRequest(f"{shown!r} is not a valid handle (like alice.bsky.social)")


def check_handle(handle: str) -> None:
    """Raise BadRequest unless `handle` has the Handle spec's syntax and an allowed TLD."""
    check_handle_syntax(handle)
    if handle.rsplit(".", 1)[-1].lower() in DISALLOWED_TLDS:
        raise BadRequest(f"{handle!r} cannot be a handle: its top-level domain is reserved")


def check_did_syntax(did: object) -> None:
    """Raise BadRequest unless `did` has the DID spec's syntax (any method, at most MAX_DID)."""
    if not isinstance(did, str) or len(did) > MAX_DID or not DID_PATTERN.fullmatch(did):
        shown = did[:80] if isinstance(did, str) else did
        raise BadRequest(f"{shown!r} is not a valid DID (did:plc:... or did:web:...)")


def check_user_did(did: object) -> None:
    """Raise BadRequest unless `did` may be stored as a user: the DID spec's syntax, and a
    blessed method in the shape check_did takes, but for a did:plc's id (USER_PLC_PATTERN).

    Every way a user is stored (Store.upsert_user and add_member, so `robot user add`, sign-in
    and adding a member) passes it: `did:key:z6Mk...`, `did:web:evil.com:..:x` (a path, which
    resolution would turn into a URL) and `did:plc:AAA` were stored when only the DID syntax was
    checked (twenty-sixth review). Sign-in and adding a member by handle or DID check the
    strict check_did before they reach the store.
    """
    _check_method(
        did,
        USER_PLC_PATTERN,
        "lower-case letters and digits after 'did:plc:', such as did:plc:ewvi7nxzyoun6zhxrhs64oiz",
        "be users",
    )


def check_did(did: str) -> None:
    """Raise BadRequest unless `did` is a did:plc or did:web of valid syntax."""
    _check_method(did, PLC_PATTERN, "24 characters from a-z and 2-7 after 'did:plc:'", "sign in")


def _is_web_did(did: str) -> bool:
    """Whether `did` is a did:web of WEB_PATTERN whose host is at most 253 characters and not
    under a top-level domain no public host has (DISALLOWED_TLDS: .internal, .local ...)."""
    if not WEB_PATTERN.fullmatch(did):
        return False
    host = did.removeprefix("did:web:")
    return host.startswith("localhost%3") or (
        len(host) <= 253 and host.rsplit(".", 1)[-1] not in DISALLOWED_TLDS
    )


def _check_method(did: object, plc: re.Pattern, plc_rule: str, purpose: str) -> None:
    """Raise BadRequest unless `did` has the DID syntax and is a did:web of a bare host
    (WEB_PATTERN) or a did:plc that `plc` matches whole (`plc_rule` says how in words);
    `purpose` ends the message for other methods ("only ... accounts can {purpose}")."""
    check_did_syntax(did)
    if plc.fullmatch(did) or _is_web_did(did):
        return
    if did.startswith("did:plc:"):
        raise BadRequest(f"{did[:80]!r} is not a valid did:plc ({plc_rule})")
    if did.startswith("did:web:"):
        raise BadRequest(
            f"{did[:80]!r} is not a valid did:web (it must name a host by its lower-case DNS "
            "name, such as did:web:example.com, with no port and no path)"
        )
    raise BadRequest(f"{did[:80]!r}: only did:plc and did:web accounts can {purpose}")


def resolve_handle(handle: str, network: Network) -> str:
    """Return the DID a handle claims: DNS TXT `_atproto.<handle>`, else HTTPS well-known.

    Handle spec, "Handle Resolution". Raises BadRequest when neither method gives one DID.
    """
    dids = {
        record[4:].strip()
        for record in network.txt_lookup(f"_atproto.{handle}")
        if record.startswith("did=")
    }
    if len(dids) > 1:
        raise BadRequest(f"the DNS of {handle} names more than one DID")
    if dids:
        did = dids.pop()
    else:
        try:
            url = f"https://{handle}/.well-known/atproto-did"
            did = network.fetcher.get_text(url, "the handle's DID").strip()
        except OutboundError as error:
            raise BadRequest(f"could not find the account of {handle}: {error.message}") from None
    # What a handle's DNS or server names is outside input: the strict check, as for a DID
    # typed at sign-in (a did:key or a did:web with a path is no account that can sign in).
    if not (PLC_PATTERN.fullmatch(did) or _is_web_did(did)):
        raise BadRequest(f"{handle} does not point to a valid DID")
    return did


def resolve_did(did: str, network: Network) -> dict:
    """Return the DID document of a did:plc (PLC directory) or did:web (/.well-known/did.json).

    DID spec, "DID Document" and "Blessed DID Methods". The document's `id` must be `did`.
    Raises BadRequest for an unknown DID, OutboundError when its server misbehaves.
    """
    check_did(did)
    if did.startswith("did:plc:"):
        url = f"{network.plc_url}/{quote(did)}"
    else:
        url = f"https://{did.removeprefix('did:web:').replace('%3A', ':').replace('%3a', ':')}"
        url += "/.well-known/did.json"
    answer = network.fetcher.request("GET", url)
    if answer.status in (404, 410):
        raise BadRequest(f"there is no account {did}")
    if answer.status != 200:
        raise OutboundError(
            f"the DID document of {did} could not be fetched (HTTP {answer.status})"
        )
    document = answer.json_object("the DID document")
    if document.get("id") != did:
        raise OutboundError(f"the DID document fetched for {did} is for another DID")
    return document


def handle_of(document: dict) -> str | None:
    """The handle a DID document claims: its first `at://` entry in alsoKnownAs."""
    for name in document.get("alsoKnownAs") or []:
        if isinstance(name, str) and name.startswith("at://"):
            return name.removeprefix("at://").lower()
    return None


def pds_of(document: dict) -> str:
    """The PDS URL of a DID document: its `#atproto_pds` service (DID spec, "DID Document")."""
    for service in document.get("service") or []:
        if (
            isinstance(service, dict)
            and str(service.get("id", "")).endswith("#atproto_pds")
            and service.get("type") == "AtprotoPersonalDataServer"
            and isinstance(service.get("serviceEndpoint"), str)
        ):
            return service["serviceEndpoint"].rstrip("/")
    raise OutboundError("the account's DID document names no PDS")


def identity_for_handle(handle: str, network: Network) -> Identity:
    """Resolve a handle to its DID, check the DID document claims it back, find the PDS."""
    did = resolve_handle(handle, network)
    document = resolve_did(did, network)
    if handle_of(document) != handle:
        raise BadRequest(f"{handle} points to {did}, but that account does not claim {handle}")
    return Identity(did, handle, pds_of(document))


def identity_for_did(did: str, network: Network) -> Identity:
    """Resolve a DID; its handle counts only if it resolves back to the DID (bidirectional)."""
    document = resolve_did(did, network)
    return Identity(did, verified_handle(did, document, network), pds_of(document))


def account_for(text: str, network: Network) -> Identity:
    """Resolve the handle or DID someone typed (to add them to a wiki) to a verified account.

    A handle must be claimed back by its DID document; a DID's handle is INVALID_HANDLE unless
    it resolves back. Raises BadRequest for malformed input and, saying "no Bluesky/ATProto
    account found for ...", when there is no such account; OutboundError (502, or 504 on a
    timeout) when the DID's server fails to answer.
    """
    kind, value = classify_input(text)
    if kind == "url":
        raise BadRequest("name the person by their handle (like alice.bsky.social) or their DID")
    try:
        if kind == "handle":
            return identity_for_handle(value, network)
        return identity_for_did(value, network)
    except BadRequest as error:
        what = f"handle {value}" if kind == "handle" else value
        raise BadRequest(f"no Bluesky/ATProto account found for {what}: {error.message}") from None


def member_account(text: str, network: Network, find_user: Callable) -> tuple[str, str]:
    """Return the (DID, handle) of the person a handle or DID names: a known user's DID as
    `find_user` (Store.find_user) has it, else the account account_for verifies (same errors)."""
    did = text.strip()
    known = find_user(did) if DID_PATTERN.fullmatch(did) else None
    if known is not None:
        return known.did, known.handle
    account = account_for(text, network)
    return account.did, account.handle


def verified_handle(did: str, document: dict, network: Network) -> str:
    """The document's handle if it resolves back to `did`, else INVALID_HANDLE (Handle spec)."""
    handle = handle_of(document)
    try:
        if handle is not None:
            check_handle(handle)
            if resolve_handle(handle, network) == did:
                return handle
    except BadRequest:
        pass
    return INVALID_HANDLE
