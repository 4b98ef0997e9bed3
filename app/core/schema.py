"""The platform database's tables, as SQLAlchemy Core objects the store builds its queries from.

The schema itself is made and changed only by the Alembic migrations in core/migrations/; this
module describes the head revision so queries can name columns. A test checks the two agree.
Timestamps are Unix seconds (BigInteger: PostgreSQL's integer ends in 2038).
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Column
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import MetaData
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import false

ROLES = ("viewer", "editor", "admin")  # ascending power
ROLE_CHECK = "role IN ('admin', 'editor', 'viewer')"

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("did", Text, primary_key=True),
    Column("handle", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # NULL for someone added to a wiki who has not signed in yet (migration 0005).
    Column("last_sign_in_at", BigInteger),
)

wikis = Table(
    "wikis",
    metadata,
    Column("slug", Text, primary_key=True),
    Column("owner_did", Text, ForeignKey("users.did"), nullable=False),
    Column("display_name", Text, nullable=False),
    Column("is_public", Boolean, nullable=False, server_default=false()),
    Column("created_at", BigInteger, nullable=False),
    Column("page_count", BigInteger, nullable=False, server_default="0"),
    Column("size_bytes", BigInteger, nullable=False, server_default="0"),
    # Usage as last recorded (app/core/usage.py): pages, bytes of HEAD's files, HEAD's time
    # (migration 0004; NULL until first recorded).
    Column("last_change_at", BigInteger),
    # Git clone, pull and push over HTTP at {slug}.{domain}/.git; off until an admin turns it
    # on (migration 0006).
    Column("git_access", Boolean, nullable=False, server_default=false()),
)

memberships = Table(
    "memberships",
    metadata,
    Column("wiki_slug", Text, ForeignKey("wikis.slug", ondelete="CASCADE"), primary_key=True),
    Column("user_did", Text, ForeignKey("users.did", ondelete="CASCADE"), primary_key=True),
    Column("role", Text, CheckConstraint(ROLE_CHECK), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("memberships_by_user", "user_did"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Text, primary_key=True),
    Column("secret_hash", Text, nullable=False, unique=True),
    Column("wiki_slug", Text, ForeignKey("wikis.slug", ondelete="CASCADE"), nullable=False),
    Column("user_did", Text, ForeignKey("users.did", ondelete="CASCADE"), nullable=False),
    Column("role", Text, CheckConstraint(ROLE_CHECK), nullable=False),
    Column("label", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger),
    Column("revoked_at", BigInteger),
    Index("tokens_by_wiki", "wiki_slug"),
)

# Reserved for the sign-in and OAuth server work: ATProto login requests in flight, MCP clients
# registered with RFC 7591, and authorization codes granted to them.
oauth_login_states = Table(
    "oauth_login_states",
    metadata,
    Column("state", Text, primary_key=True),
    Column("data", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("metadata", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)


def _granted_columns() -> tuple[Column, ...]:
    """Who granted what to whom: the client, the user and the wiki an OAuth grant is for."""
    return (
        Column(
            "client_id",
            Text,
            ForeignKey("oauth_clients.client_id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("user_did", Text, ForeignKey("users.did", ondelete="CASCADE"), nullable=False),
        Column("wiki_slug", Text, ForeignKey("wikis.slug", ondelete="CASCADE"), nullable=False),
    )


oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("code_hash", Text, primary_key=True),
    *_granted_columns(),
    Column("data", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    # Set when the code is redeemed: a second use is a replay (migration 0003).
    Column("used_at", BigInteger),
)

# Refresh tokens issued to MCP clients, by sha256; one family (`grant_id`, the code's hash) per
# consent, so reuse of a rotated token revokes the family (migration 0003).
oauth_refresh_tokens = Table(
    "oauth_refresh_tokens",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("grant_id", Text, nullable=False),
    *_granted_columns(),
    Column("scope", Text, nullable=False),
    Column("resource", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("rotated_from", Text),
    Index("oauth_refresh_tokens_by_grant", "grant_id"),
    Index("oauth_refresh_tokens_by_expiry", "expires_at"),
)

# Browser sessions (migration 0002): one row per sign-in; each host the browser visits holds
# its own credential for it (a cookie valid on that host only), got through a handoff code.
sessions = Table(
    "sessions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("user_did", Text, ForeignKey("users.did", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    Column("user_agent", Text, nullable=False, server_default=""),
    Column("upstream", Text),
    Index("sessions_by_user", "user_did"),
)

session_credentials = Table(
    "session_credentials",
    metadata,
    Column("secret_hash", Text, primary_key=True),
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("host", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("session_credentials_by_session", "session_id"),
)

session_handoffs = Table(
    "session_handoffs",
    metadata,
    Column("code_hash", Text, primary_key=True),
    Column("session_id", Text, ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("host", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
