"""The executions store (SQLAlchemy 2 + Alembic): SQLite by default, PostgreSQL by URL."""

from orchestrator.store.models import ExecutionStatus, StepStatus, TableRole
from orchestrator.store.records import ExecutionRecord, StepRecord, TableVersion, WorkflowRecord
from orchestrator.store.repository import Store

__all__ = [
    "ExecutionRecord",
    "ExecutionStatus",
    "StepRecord",
    "StepStatus",
    "Store",
    "TableRole",
    "TableVersion",
    "WorkflowRecord",
]
