"""Users who have not signed in yet: `users.last_sign_in_at`.

An admin may add a collaborator by handle before that person ever signs in; their row is made
then, with `last_sign_in_at` NULL, and sign-in sets it (Unix seconds) each time. Rows older
than this migration were made by a sign-in or by an operator, which cannot be told apart now:
they count as signed in at their creation.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("last_sign_in_at", sa.BigInteger))
    op.execute("UPDATE users SET last_sign_in_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_sign_in_at")
