"""Server-side browser sessions, their per-host cookie credentials and one-time handoff codes.

A session is one sign-in. The browser never holds it directly: each host it visits (the apex,
each wiki host) holds its own cookie credential, valid on that host only, obtained through a
single-use handoff code. Ending the session ends every credential at once.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _cascade(column: str, target: str, **kwargs) -> sa.Column:
    return sa.Column(column, sa.Text, sa.ForeignKey(target, ondelete="CASCADE"), **kwargs)


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Text, primary_key=True),
        _cascade("user_did", "users.did", nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger),
        sa.Column("user_agent", sa.Text, nullable=False, server_default=""),
        sa.Column("upstream", sa.Text),
    )
    op.create_index("sessions_by_user", "sessions", ["user_did"])
    op.create_table(
        "session_credentials",
        sa.Column("secret_hash", sa.Text, primary_key=True),
        _cascade("session_id", "sessions.id", nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("session_credentials_by_session", "session_credentials", ["session_id"])
    op.create_table(
        "session_handoffs",
        sa.Column("code_hash", sa.Text, primary_key=True),
        _cascade("session_id", "sessions.id", nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("session_handoffs", "session_credentials", "sessions"):
        op.drop_table(table)
