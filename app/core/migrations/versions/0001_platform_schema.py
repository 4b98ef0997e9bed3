"""The platform schema as robot's own runner made it before Alembic (user_version 1).

Users by DID, wikis with their owner, memberships with a role, wiki tokens stored as hashes, and
the tables reserved for ATProto login and OAuth for MCP clients. Timestamps are Unix seconds.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ROLE_CHECK = "role IN ('admin', 'editor', 'viewer')"


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.BigInteger, nullable=False)


def _cascade(column: str, target: str, **kwargs) -> sa.Column:
    return sa.Column(column, sa.Text, sa.ForeignKey(target, ondelete="CASCADE"), **kwargs)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("did", sa.Text, primary_key=True),
        sa.Column("handle", sa.Text, nullable=False),
        _created_at(),
    )
    op.create_table(
        "wikis",
        sa.Column("slug", sa.Text, primary_key=True),
        sa.Column("owner_did", sa.Text, sa.ForeignKey("users.did"), nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("is_public", sa.Boolean, nullable=False, server_default=sa.false()),
        _created_at(),
        sa.Column("page_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("size_bytes", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "memberships",
        _cascade("wiki_slug", "wikis.slug", primary_key=True),
        _cascade("user_did", "users.did", primary_key=True),
        sa.Column("role", sa.Text, sa.CheckConstraint(ROLE_CHECK), nullable=False),
        _created_at(),
    )
    op.create_index("memberships_by_user", "memberships", ["user_did"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("secret_hash", sa.Text, nullable=False, unique=True),
        _cascade("wiki_slug", "wikis.slug", nullable=False),
        _cascade("user_did", "users.did", nullable=False),
        sa.Column("role", sa.Text, sa.CheckConstraint(ROLE_CHECK), nullable=False),
        sa.Column("label", sa.Text, nullable=False, server_default=""),
        _created_at(),
        sa.Column("last_used_at", sa.BigInteger),
        sa.Column("revoked_at", sa.BigInteger),
    )
    op.create_index("tokens_by_wiki", "tokens", ["wiki_slug"])
    op.create_table(
        "oauth_login_states",
        sa.Column("state", sa.Text, primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        _created_at(),
    )
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.Text, primary_key=True),
        sa.Column("metadata", sa.Text, nullable=False),
        _created_at(),
    )
    op.create_table(
        "oauth_grants",
        sa.Column("code_hash", sa.Text, primary_key=True),
        _cascade("client_id", "oauth_clients.client_id", nullable=False),
        _cascade("user_did", "users.did", nullable=False),
        _cascade("wiki_slug", "wikis.slug", nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        _created_at(),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "oauth_grants",
        "oauth_clients",
        "oauth_login_states",
        "tokens",
        "memberships",
        "wikis",
        "users",
    ):
        op.drop_table(table)
