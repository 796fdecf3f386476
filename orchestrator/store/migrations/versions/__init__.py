"""Alembic revisions of the executions store."""
