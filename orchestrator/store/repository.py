"""The executions store: workflows and jobs, executions and their steps.

One Store per process; each method is its own short transaction, so the flow, the CLI and
the API can share the database. At most one PENDING or RUNNING execution per job is
enforced by a partial unique index, not by reading first: of two racing starts one wins,
the other gets Conflict naming the execution that is going.

A call whose database connection is lost (PostgreSQL restarting, a failover, SQLite busy)
runs again with backoff for up to `database_reconnect_seconds`, so a running flow rides
out a restart. Creating an execution is not retried: the trigger fails, clearly, instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from flowforge.errors import Conflict, InvalidArgument, NotFound
from flowforge.ids import new_run_id, validate_id
from flowforge.layout import LAYERS
from flowforge.settings import Settings
from orchestrator.store.automation_models import JobScheduleRow, JobTriggerRow, LandingSeenRow
from orchestrator.store.database import database_url, open_engine, reconnecting
from orchestrator.store.models import (
    ACTIVE,
    ExecutionRow,
    ExecutionStatus,
    JobRow,
    StepRow,
    StepStatus,
    StepTableRow,
    WorkflowExecutionRow,
    WorkflowRow,
    utcnow,
)
from orchestrator.store.notices import NoticeRecords
from orchestrator.store.records import ExecutionRecord, TableVersion, WorkflowRecord, aware
from orchestrator.store.triggers import TriggerRecords
from orchestrator.store.workflow_runs import WorkflowRunRecords
from orchestrator.workflows import Job, Workflow

FINISHED = {s.value for s in ExecutionStatus} - {s.value for s in ACTIVE}
_ACTIVE = [s.value for s in ACTIVE]
log = logging.getLogger(__name__)


class Store(TriggerRecords, NoticeRecords, WorkflowRunRecords):
    def __init__(self, engine: Engine, reconnect_seconds: float = 30.0) -> None:
        self.engine = engine
        self.reconnect_seconds = reconnect_seconds
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, settings: Settings) -> Store:
        """The store FLOWFORGE_DATABASE_URL names (SQLite under the state folder by default)."""
        return cls(open_engine(database_url(settings)), settings.database_reconnect_seconds)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # -- workflows -------------------------------------------------------------
    @reconnecting
    def save_workflow(self, workflow: Workflow, source_yaml: str | None = None) -> None:
        """Creates or replaces a workflow and its jobs (executions of kept jobs stay)."""
        with self._session() as session:
            row = session.get(WorkflowRow, workflow.id, options=[selectinload(WorkflowRow.jobs)])
            if row is None:
                row = WorkflowRow(id=workflow.id, jobs=[])
                session.add(row)
            row.name = workflow.name
            row.definition = workflow.model_dump(mode="json")
            row.source_yaml = source_yaml
            row.updated_at = utcnow()
            existing = {job.id: job for job in row.jobs}
            wanted = []
            for position, job in enumerate(workflow.jobs):
                job_row = existing.get(job.id) or JobRow(workflow_id=workflow.id, id=job.id)
                job_row.position, job_row.name = position, job.name
                job_row.definition = job.model_dump(mode="json")
                wanted.append(job_row)
            removed = [j for j in row.jobs if j.id not in {w.id for w in wanted}]
            if removed and session.scalar(
                select(ExecutionRow.id).where(
                    ExecutionRow.workflow_id == workflow.id,
                    ExecutionRow.job_id.in_([j.id for j in removed]),
                )
            ):
                names = ", ".join(j.id for j in removed)
                raise Conflict(f"jobs {names} have executions and cannot be removed")
            row.jobs = wanted

    @reconnecting
    def delete_workflow(self, workflow_id: str) -> int:
        """Deletes a workflow, its jobs and all their executions; returns how many
        executions went. Conflict while one of them is PENDING or RUNNING."""
        with self._session() as session:
            row = session.get(WorkflowRow, workflow_id)
            if row is None:
                raise NotFound(f"workflow {workflow_id!r} does not exist")
            active = session.scalar(
                select(ExecutionRow.id).where(
                    ExecutionRow.workflow_id == workflow_id, ExecutionRow.status.in_(_ACTIVE)
                )
            )
            if active is None:
                active = session.scalar(
                    select(WorkflowExecutionRow.id).where(
                        WorkflowExecutionRow.workflow_id == workflow_id,
                        WorkflowExecutionRow.status.in_(_ACTIVE),
                    )
                )
            if active is not None:
                raise Conflict(
                    f"workflow {workflow_id!r} has execution {active!r} running: cancel it first"
                )
            executions = session.scalars(
                select(ExecutionRow).where(ExecutionRow.workflow_id == workflow_id)
            ).all()
            for execution in executions:
                session.delete(execution)
            session.execute(
                delete(WorkflowExecutionRow).where(WorkflowExecutionRow.workflow_id == workflow_id)
            )
            for automation in (JobTriggerRow, LandingSeenRow, JobScheduleRow):
                session.execute(delete(automation).where(automation.workflow_id == workflow_id))
            session.flush()
            session.delete(row)
            return len(executions)

    @reconnecting
    def get_workflow(self, workflow_id: str) -> Workflow:
        with self._session() as session:
            row = session.get(WorkflowRow, validate_id(workflow_id, "workflow_id"))
            if row is None:
                raise NotFound(f"workflow {workflow_id!r} does not exist")
            return Workflow.model_validate(row.definition)

    def get_job(self, workflow_id: str, job_id: str) -> tuple[Workflow, Job]:
        workflow = self.get_workflow(workflow_id)  # that call rides out a lost connection
        try:
            return workflow, workflow.job(validate_id(job_id, "job_id"))
        except InvalidArgument as exc:
            raise NotFound(exc.message) from None

    @reconnecting
    def list_workflows(self) -> list[WorkflowRecord]:
        with self._session() as session:
            rows = session.scalars(
                select(WorkflowRow).options(selectinload(WorkflowRow.jobs)).order_by(WorkflowRow.id)
            )
            return [
                WorkflowRecord(
                    r.id, r.name, [j.id for j in r.jobs], aware(r.updated_at) or r.updated_at
                )
                for r in rows
            ]

    # -- executions ------------------------------------------------------------
    def create_execution(
        self,
        workflow_id: str,
        job_id: str,
        layers: list[str],
        full_refresh: bool = False,
        execution_id: str | None = None,
        cause: str = "manual",
    ) -> ExecutionRecord:
        """A PENDING execution with a PENDING step per layer; Conflict if one is active.
        cause: manual, upload, schedule or follow-up."""
        self.get_job(workflow_id, job_id)
        if not layers or any(layer not in LAYERS for layer in layers):
            raise InvalidArgument(f"layers must be some of {', '.join(LAYERS)}, got {layers}")
        execution_id = validate_id(execution_id, "execution_id") if execution_id else new_run_id()
        row = ExecutionRow(
            id=execution_id,
            workflow_id=workflow_id,
            job_id=job_id,
            status=ExecutionStatus.PENDING.value,
            layers=list(layers),
            full_refresh=full_refresh,
            created_at=utcnow(),
            cause=cause,
            steps=[StepRow(layer=layer, position=i) for i, layer in enumerate(layers)],
        )
        try:
            with self._session() as session:
                session.add(row)
        except IntegrityError:
            active = self.active_execution(workflow_id, job_id)
            if active is None:
                raise Conflict(f"execution {execution_id!r} already exists") from None
            raise Conflict(
                f"job {workflow_id}/{job_id} already has execution {active.id!r} "
                f"{active.status.lower()}; wait for it or cancel it"
            ) from None
        return self.get_execution(execution_id)

    @reconnecting
    def active_execution(self, workflow_id: str, job_id: str) -> ExecutionRecord | None:
        with self._session() as session:
            row = session.scalar(
                select(ExecutionRow)
                .where(
                    ExecutionRow.workflow_id == workflow_id,
                    ExecutionRow.job_id == job_id,
                    ExecutionRow.status.in_([s.value for s in ACTIVE]),
                )
                .options(selectinload(ExecutionRow.steps))
            )
            return ExecutionRecord.of(row) if row is not None else None

    @reconnecting
    def get_execution(self, execution_id: str) -> ExecutionRecord:
        with self._session() as session:
            row = session.get(
                ExecutionRow, execution_id, options=[selectinload(ExecutionRow.steps)]
            )
            if row is None:
                raise NotFound(f"execution {execution_id!r} does not exist")
            return ExecutionRecord.of(row)

    @reconnecting
    def list_executions(
        self,
        workflow_id: str | None = None,
        job_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ExecutionRecord]:
        """Newest first."""
        query = _filtered(select(ExecutionRow), workflow_id, job_id, status)
        query = (
            query.options(selectinload(ExecutionRow.steps))
            .order_by(ExecutionRow.created_at.desc(), ExecutionRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._session() as session:
            return [ExecutionRecord.of(r) for r in session.scalars(query)]

    @reconnecting
    def count_executions(
        self, workflow_id: str | None = None, job_id: str | None = None, status: str | None = None
    ) -> int:
        query = _filtered(select(func.count(ExecutionRow.id)), workflow_id, job_id, status)
        with self._session() as session:
            return int(session.scalar(query) or 0)

    @reconnecting
    def execution_for_flow_run(self, flow_run_id: str) -> ExecutionRecord | None:
        with self._session() as session:
            row = session.scalar(
                select(ExecutionRow)
                .where(ExecutionRow.flow_run_id == flow_run_id)
                .options(selectinload(ExecutionRow.steps))
            )
            return ExecutionRecord.of(row) if row is not None else None

    @reconnecting
    def attach_flow_run(self, execution_id: str, flow_run_id: str) -> None:
        with self._session() as session:
            self._row(session, execution_id).flow_run_id = flow_run_id

    @reconnecting
    def start_execution(self, execution_id: str, flow_run_id: str | None = None) -> None:
        with self._session() as session:
            row = self._row(session, execution_id)
            if row.status in FINISHED:
                raise Conflict(f"execution {execution_id!r} already ended {row.status}")
            row.status = ExecutionStatus.RUNNING.value
            row.started_at = row.started_at or utcnow()
            row.heartbeat_at = utcnow()
            row.flow_run_id = flow_run_id or row.flow_run_id

    @reconnecting
    def heartbeat(self, execution_id: str) -> None:
        """The running flow is alive (see reconcile's check for flows that stopped)."""
        with self._session() as session:
            session.execute(
                update(ExecutionRow)
                .where(
                    ExecutionRow.id == execution_id,
                    ExecutionRow.status.in_([s.value for s in ACTIVE]),
                )
                .values(heartbeat_at=utcnow())
            )

    @reconnecting
    def silent_executions(self, since: datetime) -> list[ExecutionRecord]:
        """RUNNING executions whose flow has not beaten since `since`."""
        last_beat = func.coalesce(ExecutionRow.heartbeat_at, ExecutionRow.started_at)
        query = (
            select(ExecutionRow)
            .where(ExecutionRow.status == ExecutionStatus.RUNNING.value, last_beat < since)
            .options(selectinload(ExecutionRow.steps))
        )
        with self._session() as session:
            return [ExecutionRecord.of(r) for r in session.scalars(query)]

    @reconnecting
    def finish_execution(
        self,
        execution_id: str,
        status: ExecutionStatus,
        error: str | None = None,
        balance: dict[str, Any] | None = None,
    ) -> bool:
        """Ends an execution unless it already ended; a RUNNING step becomes FAILED (SKIPPED
        when the execution COMPLETED), PENDING ones SKIPPED.

        Returns False when it had already ended (the first ending wins, e.g. a cancel
        that raced the flow's own end)."""
        with self._session() as session:
            # One conditional UPDATE decides which end wins, on PostgreSQL and SQLite alike:
            # reading the status first, then writing, let two racing ends (a cancel, the
            # flow's own) both see the row active and both "win", the later write standing.
            decided = session.execute(
                update(ExecutionRow)
                .where(ExecutionRow.id == execution_id, ExecutionRow.status.in_(_ACTIVE))
                .values(status=status.value)
                .execution_options(synchronize_session=False)
            )
            row = self._row(session, execution_id)  # NotFound for an unknown one
            if cast(CursorResult[Any], decided).rowcount == 0:
                return False
            row.error, row.finished_at = error, utcnow()
            if balance is not None:
                row.balance = balance
            for step in row.steps:
                if step.status in (StepStatus.PENDING, StepStatus.RUNNING):
                    if step.status == StepStatus.RUNNING:
                        step.finished_at = row.finished_at
                    step.status = (
                        StepStatus.FAILED.value
                        if step.status == StepStatus.RUNNING and status != ExecutionStatus.COMPLETED
                        else StepStatus.SKIPPED.value
                    )
            return True

    # -- steps -----------------------------------------------------------------
    @reconnecting
    def start_step(self, execution_id: str, layer: str, run_id: str) -> None:
        with self._session() as session:
            step = self._step(session, execution_id, layer)
            step.status, step.run_id = StepStatus.RUNNING.value, run_id
            step.started_at = step.started_at or utcnow()
            step.attempts += 1

    @reconnecting
    def record_progress(self, execution_id: str, layer: str, progress: dict[str, Any]) -> bool:
        """Keeps the layer's latest progress report (its phase and counts) on a RUNNING
        step, stamped with the time; False when the step is no longer running (the report
        came late: the step keeps the last one it had)."""
        with self._session() as session:
            done = session.execute(
                update(StepRow)
                .where(
                    StepRow.execution_id == execution_id,
                    StepRow.layer == layer,
                    StepRow.status == StepStatus.RUNNING.value,
                )
                .values(progress={**progress, "updated_at": utcnow().isoformat()})
                .execution_options(synchronize_session=False)
            )
            return cast(CursorResult[Any], done).rowcount > 0

    @reconnecting
    def finish_step(
        self,
        execution_id: str,
        layer: str,
        status: StepStatus,
        *,
        rows_in: int | None = None,
        rows_out: int | None = None,
        rows_rejected: int | None = None,
        manifest_key: str | None = None,
        warnings: list[str] | None = None,
        quality: dict[str, Any] | None = None,
        error: str | None = None,
        tables: list[TableVersion] | None = None,
    ) -> None:
        """Ends a step; `tables`: the Delta table versions it committed and read."""
        with self._session() as session:
            step = self._step(session, execution_id, layer)
            step.status, step.finished_at, step.error = status.value, utcnow(), error
            step.rows_in, step.rows_out, step.rows_rejected = rows_in, rows_out, rows_rejected
            step.manifest_key, step.warnings, step.quality = manifest_key, warnings, quality
            step.tables = [
                StepTableRow(
                    table_path=t.table, position=i, role=t.role, version=t.version, model=t.model
                )
                for i, t in enumerate(tables or [])
            ]

    @reconnecting
    def recorded_versions(self, table: str) -> set[int]:
        """Every version of `table` a step of any execution, or a workflow execution's
        models, committed or read."""
        with self._session() as session:
            query = select(StepTableRow.version).where(StepTableRow.table_path == table)
            found = set(session.scalars(query.distinct()))
        return found | self.recorded_workflow_versions(table)

    @reconnecting
    def active_executions(self) -> list[ExecutionRecord]:
        """PENDING and RUNNING executions, oldest first."""
        query = (
            select(ExecutionRow)
            .where(ExecutionRow.status.in_(_ACTIVE))
            .options(selectinload(ExecutionRow.steps))
            .order_by(ExecutionRow.created_at)
        )
        with self._session() as session:
            return [ExecutionRecord.of(r) for r in session.scalars(query)]

    @reconnecting
    def skip_steps(self, execution_id: str, layers: list[str]) -> None:
        with self._session() as session:
            for layer in layers:
                step = self._step(session, execution_id, layer)
                if step.status == StepStatus.PENDING:
                    step.status = StepStatus.SKIPPED.value

    @staticmethod
    def _row(session: Session, execution_id: str) -> ExecutionRow:
        row = session.get(ExecutionRow, execution_id)
        if row is None:
            raise NotFound(f"execution {execution_id!r} does not exist")
        return row

    @staticmethod
    def _step(session: Session, execution_id: str, layer: str) -> StepRow:
        step = session.get(StepRow, (execution_id, layer))
        if step is None:
            raise NotFound(f"execution {execution_id!r} has no {layer} step")
        return step


def _filtered(query: Any, workflow_id: str | None, job_id: str | None, status: str | None) -> Any:
    if workflow_id:
        query = query.where(ExecutionRow.workflow_id == workflow_id)
    if job_id:
        query = query.where(ExecutionRow.job_id == job_id)
    if status:
        query = query.where(ExecutionRow.status == status.upper())
    return query
