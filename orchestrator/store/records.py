"""Plain records the store returns: what callers (flow, CLI, API) read, no ORM attached."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.store.models import (
    ACTIVE,
    ExecutionRow,
    StepRow,
    StepTableRow,
    WorkflowExecutionRow,
)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TableVersion:
    """A version of a Delta table a step committed or read (see models.TableRole)."""

    role: str
    table: str
    version: int
    model: str | None = None

    @classmethod
    def of(cls, row: StepTableRow) -> TableVersion:
        return cls(role=row.role, table=row.table_path, version=row.version, model=row.model)


@dataclass(frozen=True)
class StepRecord:
    layer: str
    status: str
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    run_id: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_rejected: int | None = None
    manifest_key: str | None = None
    warnings: list[str] = field(default_factory=list)
    quality: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    tables: list[TableVersion] = field(default_factory=list)
    # The layer's last progress report (phase, counts, started_at/updated_at), or None.
    progress: dict[str, Any] | None = None

    def table(self, role: str, model: str | None = None) -> TableVersion | None:
        """The step's table in `role` (a gold model's by name), when it recorded one."""
        return next(
            (t for t in self.tables if t.role == role and (model is None or t.model == model)),
            None,
        )

    @classmethod
    def of(cls, row: StepRow) -> StepRecord:
        return cls(
            layer=row.layer,
            status=row.status,
            attempts=row.attempts,
            started_at=aware(row.started_at),
            finished_at=aware(row.finished_at),
            run_id=row.run_id,
            rows_in=row.rows_in,
            rows_out=row.rows_out,
            rows_rejected=row.rows_rejected,
            manifest_key=row.manifest_key,
            warnings=list(row.warnings or []),
            quality=dict(row.quality or {}),
            error=row.error,
            tables=[TableVersion.of(t) for t in row.tables],
            progress=dict(row.progress) if row.progress else None,
        )


@dataclass(frozen=True)
class ExecutionRecord:
    id: str
    workflow_id: str
    job_id: str
    status: str
    layers: list[str]
    full_refresh: bool
    created_at: datetime
    flow_run_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    balance: dict[str, Any] | None = None
    steps: list[StepRecord] = field(default_factory=list)
    cause: str | None = None  # manual, upload, schedule or follow-up
    workflow_execution_id: str | None = None  # the workflow run it is part of, if any

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def step(self, layer: str) -> StepRecord:
        return next(s for s in self.steps if s.layer == layer)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO 8601 text)."""
        return _plain(asdict(self))  # type: ignore[no-any-return]

    @classmethod
    def of(cls, row: ExecutionRow) -> ExecutionRecord:
        return cls(
            id=row.id,
            workflow_id=row.workflow_id,
            job_id=row.job_id,
            status=row.status,
            layers=list(row.layers),
            full_refresh=row.full_refresh,
            created_at=aware(row.created_at) or row.created_at,
            flow_run_id=row.flow_run_id,
            started_at=aware(row.started_at),
            finished_at=aware(row.finished_at),
            error=row.error,
            balance=row.balance,
            steps=[StepRecord.of(s) for s in row.steps],
            cause=row.cause,
            workflow_execution_id=row.workflow_execution_id,
        )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class WorkflowExecutionRecord:
    """A run of a whole workflow: its jobs' executions, then its own models."""

    id: str
    workflow_id: str
    status: str
    jobs: list[str]  # the jobs run in it; the workflow's other jobs' silver was reused
    full_refresh: bool
    created_at: datetime
    cause: str | None = None
    flow_run_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    models: list[dict[str, Any]] = field(default_factory=list)
    gold: dict[str, Any] = field(default_factory=dict)
    executions: list[ExecutionRecord] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def execution(self, job_id: str) -> ExecutionRecord | None:
        return next((e for e in self.executions if e.job_id == job_id), None)

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))  # type: ignore[no-any-return]

    @classmethod
    def of(
        cls, row: WorkflowExecutionRow, executions: list[ExecutionRecord]
    ) -> WorkflowExecutionRecord:
        return cls(
            id=row.id,
            workflow_id=row.workflow_id,
            status=row.status,
            jobs=list(row.jobs),
            full_refresh=row.full_refresh,
            created_at=aware(row.created_at) or row.created_at,
            cause=row.cause,
            flow_run_id=row.flow_run_id,
            started_at=aware(row.started_at),
            finished_at=aware(row.finished_at),
            error=row.error,
            models=list(row.models or []),
            gold=dict(row.gold or {}),
            executions=sorted(executions, key=lambda e: row.jobs.index(e.job_id)),
        )


@dataclass(frozen=True)
class WorkflowRecord:
    id: str
    name: str
    jobs: list[str]
    updated_at: datetime
