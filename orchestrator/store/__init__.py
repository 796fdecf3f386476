"""The executions store (SQLAlchemy 2 + Alembic): SQLite by default, PostgreSQL by URL."""

from orchestrator.store.models import ExecutionStatus, StepStatus, TableRole
from orchestrator.store.notices import Notification
from orchestrator.store.records import (
    ExecutionRecord,
    StepRecord,
    TableVersion,
    WorkflowExecutionRecord,
    WorkflowRecord,
)
from orchestrator.store.repository import Store
from orchestrator.store.triggers import PendingTrigger, ScheduleState

__all__ = [
    "ExecutionRecord",
    "ExecutionStatus",
    "Notification",
    "PendingTrigger",
    "ScheduleState",
    "StepRecord",
    "StepStatus",
    "Store",
    "TableRole",
    "TableVersion",
    "WorkflowExecutionRecord",
    "WorkflowRecord",
]
