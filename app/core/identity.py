"""Who is calling, and what may they do in this wiki: the one place credentials become a role."""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import replace

from app.core.atproto_identity import is_handle_syntax
from app.core.errors import Forbidden
from app.core.errors import RobotError
from app.core.errors import Unauthorized
from app.core.provenance import OAUTH
from app.core.provenance import TOKEN
from app.core.provenance import Agent
from app.core.provenance import agent_name
from app.core.provenance import signed_message
from app.core.settings import Settings
from app.core.signing import ACCESS_TOKEN_TYP
from app.core.signing import SigningKey
from app.core.signing import unverified_part
from app.core.store import TOKEN_PREFIX
from app.core.store import Store
from app.core.store import weaker_role

# What an MCP access token may carry; the auth service and the MCP service advertise this list.
# wiki:read lets the caller read with their role; wiki:write lets them write as far as it allows.
READ_SCOPE = "wiki:read"
WRITE_SCOPE = "wiki:write"
SCOPES = [READ_SCOPE, WRITE_SCOPE]

# What a commit's author name and address must not hold: git ends or splits the identity there
# ('<', '>', line breaks), and control characters; an address also keeps to plain characters.
_NOT_IN_NAME = re.compile(r"[<>\x00-\x1f\x7f]")
_NOT_IN_ADDRESS = re.compile(r"[^A-Za-z0-9._%+-]")
# Otterwiki's PROXY_HEADER permissions per role. WRITE does not imply READ there: list them all.
PERMISSIONS = {
    "viewer": ("READ",),
    "editor": ("READ", "WRITE", "UPLOAD"),
    "admin": ("READ", "WRITE", "UPLOAD", "ADMIN"),
}


@dataclass(frozen=True)
class Caller:
    """A verified caller of one wiki; `role` is None when they have no membership there."""

    did: str | None = None
    handle: str | None = None
    role: str | None = None
    via: str = "anonymous"  # anonymous | session | token | oauth
    # An OAuth access token granted read only (no wiki:write): `role` is capped at viewer.
    read_only_grant: bool = False
    # The program acting for the person: a wiki token's label or an OAuth client's name; None
    # for a person in the browser (a session) and for anonymous callers.
    agent: Agent | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.did is None

    def permissions(self, wiki_is_public: bool) -> tuple[str, ...]:
        if self.role:
            return PERMISSIONS[self.role]
        return ("READ",) if wiki_is_public else ()

    def git_identity(self, domain: str) -> tuple[str, str]:
        """A stable (name, email) for commits: the handle and a DID-derived address.

        Git takes neither '<', '>' nor a line break in either (GitPython raises, a 500): a
        handle not of the Handle spec's syntax (stored before robot.db refused them,
        twenty-fifth review) gives way to the DID, and any character an address or a name
        could not hold becomes '-'.
        """
        if self.did is None:
            return "Anonymous", f"anonymous@{domain}"
        local = _NOT_IN_ADDRESS.sub("-", self.did.replace(":", "."))[:64]
        name = self.handle if is_handle_syntax(self.handle) else self.did
        return _NOT_IN_NAME.sub("-", name) or local, f"{local}@{domain}"

    def commit_message(self, message: str) -> str:
        """`message` as a commit of this caller stores it: lookalike trailer lines quoted and,
        for a token or OAuth caller, the Via/On-Behalf-Of block (app.core.provenance)."""
        return signed_message(message, self.agent, self.did, self.handle)


ANONYMOUS = Caller()


def refusal(caller: Caller, permission: str, wiki_is_public: bool, doing: str) -> RobotError | None:
    """Return why `caller` may not act with `permission` (READ, WRITE...) here, or None.

    `doing` names what the permission was wanted for ("changing pages"), for the message:
    Unauthorized for an anonymous caller, Forbidden for one whose role or grant falls short.
    """
    if permission in caller.permissions(wiki_is_public):
        return None
    if caller.is_anonymous:
        return Unauthorized("sign in or send a token for this wiki")
    if caller.role is None:
        return Forbidden("you are not a member of this wiki")
    if caller.read_only_grant:
        return Forbidden(
            f"this access token grants read only (wiki:read); {doing} needs wiki:write"
        )
    return Forbidden(f"your role in this wiki is {caller.role}; {doing} needs editor")


def bearer_token(authorization: str | None) -> str | None:
    """Return the credential of an `Authorization: Bearer` header, or None if there is none."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return value.strip()


def authenticate(
    settings: Settings,
    key: SigningKey,
    store: Store,
    slug: str,
    authorization: str | None,
    session_secret: str | None,
) -> Caller:
    """Resolve the caller of wiki `slug` from a Bearer credential or the wiki host's session
    cookie (`session_secret`, valid only on this wiki's host: see app.core.session_store).

    A Bearer credential that is present but not valid raises Unauthorized; a bad cookie falls
    back to anonymous so a browser with a stale cookie can still read public wikis and log in.
    """
    credential = bearer_token(authorization)
    if credential is not None:
        return _caller_from_bearer(settings, key, store, slug, credential)
    if not session_secret:
        return ANONYMOUS
    session = store.session_for_secret(session_secret, settings.wiki_host(slug))
    if session is None:
        return ANONYMOUS
    return _member(store, slug, session.user_did, session.handle, "session")


def _caller_from_bearer(
    settings: Settings, key: SigningKey, store: Store, slug: str, credential: str
) -> Caller:
    if credential.startswith(TOKEN_PREFIX):
        found = store.authenticate_token(credential, slug)
        if found is None:
            raise Unauthorized("unknown or revoked token for this wiki")
        agent = Agent(agent_name(found.token.label), TOKEN)
        return Caller(found.token.user_did, found.handle, found.role, "token", agent=agent)
    if _jwt_typ(credential) == ACCESS_TOKEN_TYP:
        claims = key.verify(
            credential, ACCESS_TOKEN_TYP, settings.mcp_url(slug), settings.auth_origin
        )
        # A revoked grant stops its access tokens now, not at `exp`; a token without `grant`
        # predates the claim and is refused too (it lives an hour at most).
        if not store.oauth_grant_live(claims.get("grant"), claims["sub"], slug):
            raise Unauthorized("this access token's grant was revoked or has expired")
        caller = replace(
            _member(store, slug, claims["sub"], None, "oauth"),
            agent=_oauth_agent(store, claims.get("client_id")),
        )
        return _scoped(caller, claims.get("scope"))
    claims = key.verify_session(credential, settings.auth_origin)
    return _member(store, slug, claims["sub"], claims.get("handle"), "session")


def _member(store: Store, slug: str, did: str, handle: str | None, via: str) -> Caller:
    if handle is None:
        user = store.find_user(did)
        handle = user.handle if user else None
    return Caller(did, handle, store.role_of(slug, did), via)


def _oauth_agent(store: Store, client_id) -> Agent:
    """The OAuth client acting, named by its registered client_name (attacker-chosen text at
    dynamic registration: `agent_name` makes it one short plain line)."""
    client_id = client_id if isinstance(client_id, str) else None
    metadata = store.find_oauth_client(client_id) if client_id else None
    name = metadata.get("client_name") if isinstance(metadata, dict) else None
    return Agent(agent_name(name), OAUTH, client_id)


def _scoped(caller: Caller, scope) -> Caller:
    """Limit an OAuth caller's live role by the token's scope: without wiki:write, a viewer."""
    granted = scope.split() if isinstance(scope, str) else []
    if not set(granted) & set(SCOPES):
        raise Unauthorized(f"this access token grants none of the scopes {' '.join(SCOPES)}")
    if WRITE_SCOPE not in granted and caller.role is not None:
        return replace(caller, role=weaker_role(caller.role, "viewer"), read_only_grant=True)
    return caller


def _jwt_typ(token: str) -> str | None:
    header = unverified_part(token, 0)
    return header.get("typ") if header is not None else None
