"""The caller's own browser sessions: list them, end one (the account's "where you're signed in").

Ending a session ends it on every host at once (Store.end_session deletes each host's cookie
credential). Another user's session id is answered like an unknown one (404), so session ids
of other people are neither confirmed nor ended.
"""

from __future__ import annotations

from app.core.errors import NotFound
from app.core.store import Store
from app.manage.service import Manager

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
