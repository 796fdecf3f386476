"""Alembic environment: migrations run on the connection the store hands over."""

from __future__ import annotations

from alembic import context

from orchestrator.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` on the command line: use the configured URL
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
