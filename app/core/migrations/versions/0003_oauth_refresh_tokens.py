"""OAuth for MCP clients: refresh tokens (rotated, revocable by family) and spent codes.

`oauth_refresh_tokens` holds the sha256 of each refresh token, the grant it descends from (the
authorization code's hash: one family per consent), and `rotated_from`, so reusing a rotated token
can revoke its whole family (RFC 9700 §4.14.2). `oauth_grants.used_at` marks a redeemed code, so a
replayed code is recognised and the tokens issued from it revoked (RFC 6749 §4.1.2).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _cascade(column: str, target: str) -> sa.Column:
    return sa.Column(column, sa.Text, sa.ForeignKey(target, ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("oauth_grants") as batch:
        batch.add_column(sa.Column("used_at", sa.BigInteger))
    op.create_table(
        "oauth_refresh_tokens",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("grant_id", sa.Text, nullable=False),
        _cascade("client_id", "oauth_clients.client_id"),
        _cascade("user_did", "users.did"),
        _cascade("wiki_slug", "wikis.slug"),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger),
        sa.Column("rotated_from", sa.Text),
    )
    op.create_index("oauth_refresh_tokens_by_grant", "oauth_refresh_tokens", ["grant_id"])
    op.create_index("oauth_refresh_tokens_by_expiry", "oauth_refresh_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_table("oauth_refresh_tokens")
    with op.batch_alter_table("oauth_grants") as batch:
        batch.drop_column("used_at")
