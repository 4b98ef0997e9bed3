"""Revoking a session's upstream (ATProto) tokens when the session ends: the one hook for it."""

from __future__ import annotations

from flask import current_app

from app.auth.atproto.login import client_for
from app.auth.atproto.login import revoke_upstream
from app.web.flask_app import current_platform

# The auth app's extension key holding the revocation call: `revoker(upstream: dict) -> bool`.
# create_app installs `revoke_with_atproto`; without one, logout ends the platform session only.
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


def revoke_with_atproto(upstream: dict) -> bool:
    """The revoker the auth service installs (UPSTREAM_REVOKER): the sign-in's ATProto client
    revoking the session's refresh (else access) token at its AS (RFC 7009, best effort)."""
    network = current_app.extensions["robot_atproto_network"]
    client = client_for(current_platform().settings, current_app.extensions["robot_client_key"])
    return revoke_upstream(network, client, upstream)
