"""Alembic environment: runs against the connection handed over in `config.attributes`."""

from __future__ import annotations

from alembic import context

from architect.store.schema import all_metadata

target_metadata = all_metadata()
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
