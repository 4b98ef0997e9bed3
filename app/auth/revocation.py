"""Revoking a session's upstream (ATProto) tokens when the session ends: the one hook for it."""

from __future__ import annotations

from flask import current_app

# The auth app's extension key holding the revocation call: `revoker(upstream: dict) -> bool`.
# The sign-in's ATProto client provides it (RFC 7009 at the user's authorization server);
# until it is wired in `create_app`, logout ends the platform session and revokes nothing.
UPSTREAM_REVOKER = "robot_upstream_revoker"


def revoke_upstream_tokens(upstream: dict | None) -> bool:
    """Ask the user's ATProto authorization server to revoke the tokens of one ended session.

    `upstream` is the token set the sign-in stored with the session (Store.session_upstream),
    or None. Best effort: returns True only when the server confirmed the revocation; False
    when there is nothing to revoke, no revocation client is installed, or the call failed
    (logged; the platform session is already ended, which is what protects the user here).
    """
    revoker = current_app.extensions.get(UPSTREAM_REVOKER)
    if not upstream or revoker is None:
        return False
    try:
        return bool(revoker(upstream))
    except Exception:  # an unreachable or broken AS must not turn a logout into an error
        current_app.logger.exception("revoking the upstream tokens of a session failed")
        return False
