"""Alembic migrations of the executions store, applied when the store is opened."""
