"""Wiki usage: when a wiki last changed, beside its page count and size.

`wikis.last_change_at` is the Unix time (seconds) of the HEAD commit when usage was last
recorded (app/core/usage.py); NULL until the first recording. It lives in the row rather than
being read from git so that listing every wiki stays one query.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wikis") as batch:
        batch.add_column(sa.Column("last_change_at", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("wikis") as batch:
        batch.drop_column("last_change_at")
