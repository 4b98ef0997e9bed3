"""The caller's own account: who they are, their browser sessions, and deleting it all.

Ending a session ends it on every host at once (Store.end_session deletes each host's cookie
credential). Another user's session id is answered like an unknown one (404), so session ids
of other people are neither confirmed nor ended. Deleting the account takes the wikis it owns
with it, so it needs the handle typed back as confirmation.
"""

from __future__ import annotations

from app.core import wikis
from app.core.errors import BadRequest
from app.core.errors import NotFound
from app.core.platform import Platform
from app.core.store import Store
from app.manage.service import Manager
from app.manage.service import describe

# Session ids look like `ses_` and 24 hex digits; anything far longer is not one.
MAX_SESSION_ID = 64


def list_account_sessions(store: Store, manager: Manager) -> list[dict]:
    """The manager's live sessions, newest first: Session.as_dict() plus `current` (bool,
    True for the session whose apex cookie made this request)."""
    return [
        {**session.as_dict(), "current": session.id == manager.session_id}
        for session in store.list_sessions(manager.did)
    ]


def end_account_session(store: Store, manager: Manager, session_id: str) -> bool:
    """End the manager's live session `session_id` everywhere; return whether it was the one
    this request came with. Raises NotFound when no live session of theirs has that id."""
    if len(session_id) > MAX_SESSION_ID or not store.end_session(session_id, did=manager.did):
        raise NotFound("you have no live session with this id")
    return session_id == manager.session_id


def account_summary(platform: Platform, manager: Manager) -> dict:
    """Return the caller's account: {"did", "handle", "member_since" (Unix seconds of the
    user row's created_at; None if the session's user has no row yet), "wikis": the wikis they
    own, each as the wikis API shows it (usage included)}."""
    store = platform.store
    user = store.find_user(manager.did)
    owned = store.list_wikis(owner_did=manager.did)
    return {
        "did": manager.did,
        "handle": user.handle if user is not None else manager.handle,
        "member_since": user.created_at if user is not None else None,
        "wikis": [describe(platform.settings, wiki, "admin") for wiki in owned],
    }


def delete_account(platform: Platform, manager: Manager, confirm: str) -> dict:
    """Delete the caller's account; return {"deleted": did, "wikis": [slugs deleted]}.

    `confirm` must be the caller's handle (BadRequest otherwise). Every wiki they own goes
    with its repo (each under its write lock, as delete_wiki), then in one transaction their
    memberships in others' wikis, wiki tokens, OAuth grants, sessions on every host and their
    user row (app.core.wikis.delete_user). Raises NotFound when they have no account, Conflict
    when one of their wikis came or went meanwhile, Unavailable (503, Retry-After) when an
    edit or a push holds one of them (refused at once: no API worker waits); then nothing
    has been deleted.
    """
    store = platform.store
    user = store.find_user(manager.did)
    if user is None:
        raise NotFound("this session's user has no account (it may be deleted already)")
    if not isinstance(confirm, str) or confirm.strip().removeprefix("@").lower() != user.handle:
        raise BadRequest(
            f"to delete your account and every wiki you own, confirm with your handle "
            f"({user.handle}) in 'confirm'"
        )
    deleted = wikis.delete_user(platform.settings, store, user.did, lock_wait=0)
    return {"deleted": user.did, "wikis": deleted}
