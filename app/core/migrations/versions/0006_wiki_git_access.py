"""Git over HTTP per wiki: `wikis.git_access`, off for every wiki until its admin turns it on.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wikis") as batch:
        batch.add_column(
            sa.Column("git_access", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("wikis") as batch:
        batch.drop_column("git_access")
