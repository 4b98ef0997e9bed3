"""Who may manage which wiki, and the management API's actions on wikis, tokens and members.

The rules, in one place:
- Managing takes a platform session (the session JWT as Bearer or the apex session cookie).
  Wiki tokens and OAuth access tokens act inside one wiki and never manage it.
- Any member may see a wiki; its admins (the owner always is one) change its settings, tokens
  and members: the owner made them admins. Only the owner deletes it, as only the owner
  can never be removed from it.
- A caller who is not a member gets the same 404 as for a wiki that does not exist, so other
  people's wikis (names, owners, settings) stay private. That a slug is taken is public anyway:
  check-slug answers it for Caddy, and creating a taken slug says 409.
- A cookie-authenticated change must come from the platform's own origin (sibling wiki hosts
  are same-site, so SameSite=Lax alone does not stop them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core import wikis
from app.core.atproto_identity import member_account
from app.core.errors import BadRequest
from app.core.errors import Conflict
from app.core.errors import Forbidden
from app.core.errors import NotFound
from app.core.errors import Unauthorized
from app.core.identity import bearer_token
from app.core.platform import Platform
from app.core.settings import Settings
from app.core.slugs import slug_from_host
from app.core.slugs import slug_problem
from app.core.slugs import validate_slug
from app.core.store import TOKEN_PREFIX
from app.core.store import Store
from app.core.store import Wiki
from app.core.store import validate_role

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A new token gets this role unless the body names one: enough for an agent to edit pages.
DEFAULT_TOKEN_ROLE = "editor"
# DNS names are at most 253 characters; Caddy asks with a bare, lowercase-able host name.
_DOMAIN_CHARS = re.compile(r"^[a-z0-9.-]{1,253}$")
_TYPE_NAMES = {str: "a string", bool: "true or false"}


@dataclass(frozen=True)
class Manager:
    """A caller of the management API, verified from a session; `via` is bearer or cookie.

    `session_id` is the server-side session of a cookie caller (None for a Bearer JWT).
    """

    did: str
    handle: str | None
    via: str
    session_id: str | None = None


def _short(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def authenticate_manager(
    platform: Platform, authorization: str | None, session_secret: str | None
) -> Manager:
    """Return the session's caller, or raise Unauthorized saying what is missing or wrong.

    `session_secret` is the apex session cookie's value (a server-side session credential).
    """
    settings = platform.settings
    credential = bearer_token(authorization)
    if credential is not None:
        if credential.startswith(TOKEN_PREFIX):
            raise Unauthorized("a wiki token cannot manage wikis; use a session token")
        claims = platform.key.verify_session(credential, settings.auth_origin)
        return Manager(claims["sub"], claims.get("handle"), "bearer")
    if not session_secret:
        raise Unauthorized("log in first", login_url=settings.login_url())
    session = platform.store.session_for_secret(session_secret, settings.platform_domain)
    if session is None:
        raise Unauthorized(
            "your session is invalid or has expired; log in again", login_url=settings.login_url()
        )
    return Manager(session.user_did, session.handle, "cookie", session.id)


def check_same_origin(settings: Settings, manager: Manager, method: str, origin: str | None):
    """Refuse a cookie-driven change unless the browser says it comes from the platform itself."""
    if manager.via != "cookie" or method.upper() in SAFE_METHODS:
        return
    if origin != settings.api_origin:
        raise Forbidden(
            f"cross-site request refused: changes with the session cookie must come from "
            f"{settings.api_origin} (or send the session as a Bearer token)"
        )


def wiki_for_domain(settings: Settings, store: Store, domain: str | None) -> str:
    """Return the slug of the existing wiki served at `domain`, or raise NotFound."""
    name = (domain or "").lower()  # exact: Caddy asks with the bare host name
    slug = slug_from_host(name, settings.platform_domain) if _DOMAIN_CHARS.fullmatch(name) else None
    if slug is None or name != settings.wiki_host(slug) or store.find_wiki(slug) is None:
        raise NotFound("no wiki is served at this domain")
    return slug


def _fields(body: dict, allowed: dict[str, type], required: tuple[str, ...] = ()) -> dict:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(
            f"unknown field {_short(unknown[0])}; allowed: {', '.join(sorted(allowed))}"
        )
    for name in required:
        if name not in body:
            raise BadRequest(f"{name!r} is required")
    for name, value in body.items():
        if not isinstance(value, allowed[name]):
            raise BadRequest(f"{name!r} must be {_TYPE_NAMES[allowed[name]]}")
    return body


def _wiki_and_role(store: Store, slug: str, did: str) -> tuple[Wiki, str]:
    wiki = store.find_wiki(slug) if slug_problem(slug) is None else None
    role = store.role_of(slug, did) if wiki is not None else None
    if wiki is None or role is None:
        raise NotFound(f"no wiki named {_short(slug)}")
    return wiki, role


def _admin_wiki(store: Store, slug: str, did: str) -> Wiki:
    """Return wiki `slug` if `did` is its admin; NotFound for non-members, else Forbidden."""
    wiki, role = _wiki_and_role(store, slug, did)
    if role != "admin":
        raise Forbidden(f"your role in this wiki is {role}; managing it needs admin")
    return wiki


def describe(settings: Settings, wiki: Wiki, role: str) -> dict:
    """Return a wiki as the API shows it to a member with `role`."""
    return {
        **wiki.as_dict(),
        "role": role,
        "url": settings.wiki_url(wiki.slug),
        "mcp_url": settings.mcp_url(wiki.slug),
        "git_url": settings.wiki_url(wiki.slug).rstrip("/") + "/.git",
        "export_url": settings.wiki_url(wiki.slug).rstrip("/") + "/api/v1/export",
    }


# -- wikis ------------------------------------------------------------------------------------


def list_wikis(platform: Platform, manager: Manager) -> list[dict]:
    """Return every wiki the caller is a member of, with their role in it."""
    store = platform.store
    return [
        describe(platform.settings, wiki, store.role_of(wiki.slug, manager.did) or "viewer")
        for wiki in store.list_wikis(member_did=manager.did)
    ]


def check_new_slug(platform: Platform, slug: str) -> str:
    """Return `slug` if a new wiki may take it; raise BadRequest (malformed or reserved) or
    Conflict (taken) saying why. create_wiki checks the same again when it creates."""
    validate_slug(slug)
    if platform.store.find_wiki(slug) is not None:
        raise Conflict(f"wiki {slug!r} already exists; choose another name")
    return slug


def create_wiki(platform: Platform, manager: Manager, body: dict) -> dict:
    """Create a wiki owned by the caller from `{"slug", "display_name"?, "public"?}`."""
    _fields(body, {"slug": str, "display_name": str, "public": bool}, required=("slug",))
    validate_slug(body["slug"])  # what was wrong with the request comes before the quota
    store = platform.store
    limit = platform.settings.max_wikis_per_user
    # Each wiki is a git repo on disk: one account must not fill the disk or squat on names.
    # (Two creates at once may both pass this count; a cap, not an exact quota.)
    if len(store.list_wikis(owner_did=manager.did)) >= limit:
        raise Forbidden(
            f"you already own {limit} wikis, the most one person may have here; "
            "delete one you no longer need, or ask the operator"
        )
    if store.find_user(manager.did) is None:
        if not manager.handle:
            raise Unauthorized("this session names no known user; log in again")
        store.upsert_user(manager.did, manager.handle, signed_in=True)  # a session: they did
    wiki = wikis.create_wiki(
        platform.settings,
        store,
        body["slug"],
        manager.did,
        body.get("display_name"),
        body.get("public", False),
    )
    return describe(platform.settings, wiki, "admin")


def get_wiki(platform: Platform, manager: Manager, slug: str) -> dict:
    """Return one wiki the caller is a member of."""
    wiki, role = _wiki_and_role(platform.store, slug, manager.did)
    return describe(platform.settings, wiki, role)


def update_wiki(platform: Platform, manager: Manager, slug: str, body: dict) -> dict:
    """Change a wiki's display name, visibility and/or git access (admins only)."""
    _fields(body, {"display_name": str, "public": bool, "git_access": bool})
    if not body:
        raise BadRequest("nothing to change: send 'display_name', 'public' and/or 'git_access'")
    _admin_wiki(platform.store, slug, manager.did)
    name = body.get("display_name")
    wiki = platform.store.update_wiki(
        slug,
        display_name=None if name is None else wikis.clean_display_name(name, slug),
        is_public=body.get("public"),
        git_access=body.get("git_access"),
    )
    return describe(platform.settings, wiki, "admin")


def delete_wiki(platform: Platform, manager: Manager, slug: str) -> None:
    """Delete a wiki with its repo and wiki.db, between two edits: its owner only.

    Raises NotFound (not a member), Forbidden (a member who is not the owner: an admin may
    manage the wiki, but the owner cannot be removed, so neither can their wiki), Unavailable
    (503, Retry-After) while an edit or a push holds the wiki's write lock."""
    wiki = _admin_wiki(platform.store, slug, manager.did)
    if wiki.owner_did != manager.did:
        raise Forbidden("only the owner of this wiki can delete it")
    # Refused at once (503) while an edit or a push holds the wiki: no API worker waits.
    wikis.delete_wiki(platform.settings, platform.store, slug, lock_wait=0)


# -- tokens -----------------------------------------------------------------------------------


def list_tokens(platform: Platform, manager: Manager, slug: str) -> list[dict]:
    """Return the wiki's tokens (never their secrets)."""
    _admin_wiki(platform.store, slug, manager.did)
    return [token.as_dict() for token in platform.store.list_tokens(slug)]


def create_token(platform: Platform, manager: Manager, slug: str, body: dict) -> dict:
    """Create a token for the caller in this wiki; the secret is in the answer, and only there."""
    _fields(body, {"role": str, "label": str})
    _admin_wiki(platform.store, slug, manager.did)
    role = validate_role(body.get("role", DEFAULT_TOKEN_ROLE))
    label = body.get("label", "")
    token, secret = platform.store.create_token(slug, manager.did, role, label)
    return {"token": token.as_dict(), "secret": secret, "mcp_url": platform.settings.mcp_url(slug)}


def revoke_token(platform: Platform, manager: Manager, slug: str, token_id: str) -> dict:
    """Revoke one of this wiki's tokens; it stops working at once. Returns the token's dict.

    Raises NotFound (no such token in this wiki) and Conflict (already revoked: nothing to do,
    as `robot token revoke` says too)."""
    _admin_wiki(platform.store, slug, manager.did)
    try:
        token = platform.store.get_token(token_id)
    except NotFound:
        token = None
    if token is None or token.wiki_slug != slug:
        raise NotFound(f"no token {_short(token_id)} in this wiki")
    if token.revoked_at is not None:
        raise Conflict(f"token {_short(token_id)} was already revoked; it does not work")
    return platform.store.revoke_token(token_id).as_dict()


# -- members ----------------------------------------------------------------------------------


def list_members(platform: Platform, manager: Manager, slug: str) -> list[dict]:
    """Return the wiki's members, oldest first, as {"did", "handle", "role", "owner": bool,
    "signed_in": bool} (signed_in is False for someone added who has not signed in yet).

    Raises NotFound (not a member, or no such wiki) and Forbidden (not an admin).
    """
    _admin_wiki(platform.store, slug, manager.did)
    return [member.as_dict() for member in platform.store.list_members(slug)]


def set_member(platform: Platform, manager: Manager, slug: str, body: dict) -> tuple[dict, bool]:
    """Add someone to the wiki or change their role; return (member, whether they are new).

    `body` is {"member": handle or DID, "role": "admin" | "editor" | "viewer"} (the older
    {"did", "role"} still works). A handle is resolved through ATProto and must be claimed back
    by its DID document; someone who has never signed in is added all the same and finds the
    wiki when they do. The member is a dict as in list_members. Raises NotFound (caller not a
    member), Forbidden (caller not an admin), BadRequest (malformed body, no account for the
    handle or DID, changing yourself), Conflict (the owner's role never changes), and
    UpstreamError 502/504 when the ATProto network fails to answer. Nothing changes on error.
    """
    _fields(body, {"member": str, "did": str, "role": str}, required=("role",))
    store = platform.store
    wiki = _admin_wiki(store, slug, manager.did)
    if ("member" in body) == ("did" in body):
        raise BadRequest("send 'member': the person's handle or DID")
    validate_role(body["role"])
    text = body.get("member", body.get("did"))
    did, handle = member_account(text, platform.atproto_network(), store.find_user)
    if did == manager.did == wiki.owner_did:
        raise Conflict("you are already the owner of this wiki, and the owner is always its admin")
    if did == wiki.owner_did:
        raise Conflict("the owner of a wiki is always its admin; their role cannot change")
    if did == manager.did:
        raise BadRequest("you are already an admin of this wiki; another admin may change that")
    member, is_new = store.add_member(slug, did, handle, body["role"])
    return member.as_dict(), is_new


def remove_member(platform: Platform, manager: Manager, slug: str, did: str) -> None:
    """Remove member `did`; their tokens for this wiki are revoked with them.

    Raises NotFound (caller or `did` not a member), Forbidden (caller not an admin) and
    Conflict for the owner, who can never be removed.
    """
    _admin_wiki(platform.store, slug, manager.did)
    platform.store.remove_member(slug, did)
