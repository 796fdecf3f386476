"""The executions store's tables: workflows, jobs, executions and their steps."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class ExecutionStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


ACTIVE = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)
# The partial unique index that allows one active execution per job (SQLite and PostgreSQL).
ACTIVE_PREDICATE = "status IN ('PENDING', 'RUNNING')"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class WorkflowRow(Base):
    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    definition: Mapped[dict[str, Any]]
    source_yaml: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    jobs: Mapped[list[JobRow]] = relationship(
        back_populates="workflow", cascade="all, delete-orphan", order_by="JobRow.position"
    )


class JobRow(Base):
    __tablename__ = "jobs"

    workflow_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(255), default="")
    definition: Mapped[dict[str, Any]]

    workflow: Mapped[WorkflowRow] = relationship(back_populates="jobs")


class ExecutionRow(Base):
    __tablename__ = "executions"
    __table_args__ = (
        ForeignKeyConstraint(["workflow_id", "job_id"], ["jobs.workflow_id", "jobs.id"]),
        Index(
            "uq_executions_one_active_per_job",
            "workflow_id",
            "job_id",
            unique=True,
            sqlite_where=text(ACTIVE_PREDICATE),
            postgresql_where=text(ACTIVE_PREDICATE),
        ),
        Index("ix_executions_job_created", "workflow_id", "job_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(String(64))
    flow_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default=ExecutionStatus.PENDING.value)
    layers: Mapped[list[Any]]
    full_refresh: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    balance: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Refreshed by the running flow; reconcile ends executions whose flow stopped beating.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What started it: manual, upload, schedule, or follow-up (it waited for a running one).
    cause: Mapped[str | None] = mapped_column(String(16))
    # When the notifier considered the ended execution (NULL: not yet; see notify.py).
    noticed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The workflow execution this job execution is part of (NULL: the job ran alone).
    workflow_execution_id: Mapped[str | None] = mapped_column(String(64), index=True)

    steps: Mapped[list[StepRow]] = relationship(
        back_populates="execution", cascade="all, delete-orphan", order_by="StepRow.position"
    )


class StepRow(Base):
    __tablename__ = "execution_steps"

    execution_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True
    )
    layer: Mapped[str] = mapped_column(String(16), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=StepStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    run_id: Mapped[str | None] = mapped_column(String(64))
    rows_in: Mapped[int | None] = mapped_column(BigInteger)
    rows_out: Mapped[int | None] = mapped_column(BigInteger)
    rows_rejected: Mapped[int | None] = mapped_column(BigInteger)
    manifest_key: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list[Any] | None] = mapped_column(JSON)
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    # The layer's last progress report while it ran (kept once it ended), see record_progress.
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    execution: Mapped[ExecutionRow] = relationship(back_populates="steps")
    # Loaded with the step (one query per batch of steps): every reader of a step shows them.
    tables: Mapped[list[StepTableRow]] = relationship(
        cascade="all, delete-orphan", order_by="StepTableRow.position", lazy="selectin"
    )


class TableRole(StrEnum):
    OUTPUT = "output"  # the step's main table, the version it committed
    SIDE = "side"  # rejects (bronze) or quarantine (silver), the version committed
    INPUT = "input"  # the upstream table and the version the step read
    MODEL = "model"  # one gold model's table, the version committed


class StepTableRow(Base):
    """A Delta table version a step committed or read: what its previews show, and what
    `flowforge maintain` keeps however old it is."""

    __tablename__ = "step_tables"
    __table_args__ = (
        ForeignKeyConstraint(
            ["execution_id", "layer"],
            ["execution_steps.execution_id", "execution_steps.layer"],
            ondelete="CASCADE",
        ),
        Index("ix_step_tables_table", "table_path", "version"),
    )

    execution_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    layer: Mapped[str] = mapped_column(String(16), primary_key=True)
    table_path: Mapped[str] = mapped_column(String(512), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(BigInteger)
    model: Mapped[str | None] = mapped_column(String(64))


class WorkflowExecutionRow(Base):
    """One run of a whole workflow: its jobs' executions (rows of `executions` pointing
    here), then the workflow's own gold models, whose outcome `models` keeps."""

    __tablename__ = "workflow_executions"
    __table_args__ = (
        Index(
            "uq_workflow_executions_one_active",
            "workflow_id",
            unique=True,
            sqlite_where=text(ACTIVE_PREDICATE),
            postgresql_where=text(ACTIVE_PREDICATE),
        ),
        Index("ix_workflow_executions_created", "workflow_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("workflows.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16), default=ExecutionStatus.PENDING.value)
    jobs: Mapped[list[Any]]  # the jobs run; the others' committed silver is reused
    full_refresh: Mapped[bool] = mapped_column(Boolean, default=False)
    cause: Mapped[str | None] = mapped_column(String(16))
    flow_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    # The workflow models' outcome: status (BUILT, SKIPPED, FAILED), rows, table, version,
    # preview and lineage per model; `gold`: the build's own figures (seconds, warnings).
    models: Mapped[list[Any] | None] = mapped_column(JSON)
    gold: Mapped[dict[str, Any] | None] = mapped_column(JSON)
