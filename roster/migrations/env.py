"""Alembic's environment for the roster store.

roster.schema hands the connection in (`config.attributes["connection"]`), inside the one
transaction that also holds the upgrade lock; this file only runs the migrations on it.
`target_metadata` (the models and slack-sdk's OAuth tables) is what `alembic revision --autogenerate` compares against.
"""

from __future__ import annotations

from alembic import context

from roster.schema import target_metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - roster.schema always passes one
    raise RuntimeError("run migrations with `rosterbot db upgrade` (roster.schema.upgrade)")

context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    # SQLite cannot alter constraints in place: Alembic's batch mode copies the table.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
