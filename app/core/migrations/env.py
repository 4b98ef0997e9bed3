"""Alembic's entry: run the migrations on the connection app.core.database hands over.

robot runs migrations only through `robot init` (app.core.database.upgrade), inside the
transaction it opened, so there is no alembic.ini and no offline (SQL script) mode.
"""

from alembic import context

from app.core.schema import metadata

connection = context.config.attributes["connection"]
# Batch mode lets later migrations alter SQLite tables (copy and move), which ALTER cannot.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
