"""Alembic environment: always run on a connection handed over by `db.migrate`."""

from alembic import context

from chatkit_backend.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
