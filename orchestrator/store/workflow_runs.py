"""Store calls behind workflow runs: one workflow execution, its jobs' executions, its
models' outcome.

Starting one records the workflow execution and a PENDING execution for each job it runs
in one transaction, so the partial unique indexes decide both races at once: a second run
of the workflow, or a job already running on its own, is a Conflict naming the execution
that is going, and nothing of the refused run is left behind.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from flowforge.errors import Conflict, InvalidArgument, NotFound
from flowforge.ids import new_run_id, validate_id
from flowforge.tables import TableRef
from orchestrator.store.database import reconnecting
from orchestrator.store.models import (
    ACTIVE,
    ExecutionRow,
    ExecutionStatus,
    StepRow,
    WorkflowExecutionRow,
    WorkflowRow,
    utcnow,
)
from orchestrator.store.records import ExecutionRecord, WorkflowExecutionRecord

_ACTIVE = [s.value for s in ACTIVE]


class WorkflowRunRecords:
    engine: Engine
    reconnect_seconds: float

    def _session(self) -> AbstractContextManager[Session]:  # Store's
        raise NotImplementedError

    def active_execution(self, workflow_id: str, job_id: str) -> ExecutionRecord | None:
        raise NotImplementedError  # Store's

    def create_workflow_execution(
        self,
        workflow_id: str,
        jobs: list[str],
        layers: list[str],
        full_refresh: bool = False,
        cause: str = "manual",
    ) -> WorkflowExecutionRecord:
        """A PENDING workflow execution with a PENDING execution per job in `jobs` (all the
        workflow's jobs when empty). Conflict when the workflow or one of the jobs runs."""
        with self._session() as session:
            workflow = session.get(
                WorkflowRow,
                validate_id(workflow_id, "workflow_id"),
                options=[selectinload(WorkflowRow.jobs)],
            )
            if workflow is None:
                raise NotFound(f"workflow {workflow_id!r} does not exist")
            known = [j.id for j in workflow.jobs]
        for i, job in enumerate(jobs):
            if job not in known:
                raise InvalidArgument(
                    f"jobs[{i}]: workflow {workflow_id!r} has no job {job!r} "
                    f"(jobs: {', '.join(known)})"
                )
        chosen = [j for j in known if j in jobs] if jobs else known
        run_id = new_run_id()
        now = utcnow()
        row = WorkflowExecutionRow(
            id=run_id, workflow_id=workflow_id, status=ExecutionStatus.PENDING.value,
            jobs=chosen, full_refresh=full_refresh, cause=cause, created_at=now,
        )  # fmt: skip
        children = [
            ExecutionRow(
                id=f"{run_id}-{n}",
                workflow_id=workflow_id,
                job_id=job,
                status=ExecutionStatus.PENDING.value,
                layers=list(layers),
                full_refresh=full_refresh,
                created_at=now,
                cause=cause,
                workflow_execution_id=run_id,
                steps=[StepRow(layer=layer, position=i) for i, layer in enumerate(layers)],
            )  # fmt: skip
            for n, job in enumerate(chosen, start=1)
        ]
        try:
            with self._session() as session:
                session.add(row)
                session.flush()  # the workflow's own index decides first
                session.add_all(children)
        except IntegrityError:
            raise self._busy(workflow_id, chosen) from None
        return self.get_workflow_execution(run_id)

    def _busy(self, workflow_id: str, jobs: list[str]) -> Conflict:
        running = self.active_workflow_execution(workflow_id)
        if running is not None:
            return Conflict(
                f"workflow {workflow_id!r} already has workflow execution {running.id!r} "
                f"{running.status.lower()}; wait for it or cancel it"
            )
        for job in jobs:
            active = self.active_execution(workflow_id, job)
            if active is not None:
                return Conflict(
                    f"job {workflow_id}/{job} already has execution {active.id!r} "
                    f"{active.status.lower()}; wait for it or cancel it"
                )
        return Conflict(f"workflow {workflow_id!r} could not start: try again")

    @reconnecting
    def active_workflow_execution(self, workflow_id: str) -> WorkflowExecutionRecord | None:
        with self._session() as session:
            row = session.scalar(
                select(WorkflowExecutionRow).where(
                    WorkflowExecutionRow.workflow_id == workflow_id,
                    WorkflowExecutionRow.status.in_(_ACTIVE),
                )
            )
            return self._records(session, [row])[0] if row is not None else None

    @reconnecting
    def get_workflow_execution(self, run_id: str) -> WorkflowExecutionRecord:
        with self._session() as session:
            return self._records(session, [self._workflow_row(session, run_id)])[0]

    @reconnecting
    def list_workflow_executions(
        self, workflow_id: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[WorkflowExecutionRecord]:
        """Newest first."""
        query = select(WorkflowExecutionRow)
        if workflow_id:
            query = query.where(WorkflowExecutionRow.workflow_id == workflow_id)
        query = query.order_by(
            WorkflowExecutionRow.created_at.desc(), WorkflowExecutionRow.id.desc()
        )
        with self._session() as session:
            return self._records(session, list(session.scalars(query.limit(limit).offset(offset))))

    @reconnecting
    def start_workflow_execution(self, run_id: str, flow_run_id: str | None = None) -> None:
        with self._session() as session:
            row = self._workflow_row(session, run_id)
            if row.status not in _ACTIVE:
                raise Conflict(f"workflow execution {run_id!r} already ended {row.status}")
            row.status = ExecutionStatus.RUNNING.value
            row.started_at = row.started_at or utcnow()
            row.heartbeat_at = utcnow()
            row.flow_run_id = flow_run_id or row.flow_run_id

    @reconnecting
    def attach_workflow_flow_run(self, run_id: str, flow_run_id: str) -> None:
        with self._session() as session:
            self._workflow_row(session, run_id).flow_run_id = flow_run_id

    @reconnecting
    def workflow_heartbeat(self, run_id: str) -> None:
        with self._session() as session:
            session.execute(
                update(WorkflowExecutionRow)
                .where(WorkflowExecutionRow.id == run_id, WorkflowExecutionRow.status.in_(_ACTIVE))
                .values(heartbeat_at=utcnow())
            )

    @reconnecting
    def silent_workflow_executions(self, since: datetime) -> list[WorkflowExecutionRecord]:
        """RUNNING workflow executions whose flow has not beaten since `since`."""
        with self._session() as session:
            rows = list(
                session.scalars(
                    select(WorkflowExecutionRow).where(
                        WorkflowExecutionRow.status == ExecutionStatus.RUNNING.value,
                        WorkflowExecutionRow.heartbeat_at < since,
                    )
                )
            )
            return self._records(session, rows)

    @reconnecting
    def record_workflow_models(
        self, run_id: str, models: list[dict[str, Any]], gold: dict[str, Any]
    ) -> None:
        """The workflow models' outcome (status, rows, table version, preview, lineage)."""
        with self._session() as session:
            row = self._workflow_row(session, run_id)
            row.models, row.gold = models, gold

    @reconnecting
    def finish_workflow_execution(
        self, run_id: str, status: ExecutionStatus, error: str | None = None
    ) -> bool:
        """Ends a workflow execution unless it already ended (the first ending wins, e.g. a
        cancel that raced the flow's own end); False when it had already ended. Its jobs'
        executions are ended by the caller (each has its own flow run to stop)."""
        with self._session() as session:
            decided = session.execute(
                update(WorkflowExecutionRow)
                .where(WorkflowExecutionRow.id == run_id, WorkflowExecutionRow.status.in_(_ACTIVE))
                .values(status=status.value, error=error, finished_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            self._workflow_row(session, run_id)  # NotFound for an unknown one
            return cast(CursorResult[Any], decided).rowcount > 0

    @reconnecting
    def recorded_workflow_versions(self, table: str) -> set[int]:
        """Every version of a workflow model's `table` a workflow execution committed
        (none for any other table)."""
        ref = TableRef(table)
        if ref.kind != "workflow model":
            return set()
        with self._session() as session:
            found = session.scalars(
                select(WorkflowExecutionRow.models).where(
                    WorkflowExecutionRow.workflow_id == ref.workflow_id
                )
            )
            return {
                int(m["version"])
                for models in found
                for m in models or []
                if m.get("table") == table and m.get("version") is not None
            }

    @staticmethod
    def _workflow_row(session: Session, run_id: str) -> WorkflowExecutionRow:
        row = session.get(WorkflowExecutionRow, run_id)
        if row is None:
            raise NotFound(f"workflow execution {run_id!r} does not exist")
        return row

    @staticmethod
    def _records(
        session: Session, rows: list[WorkflowExecutionRow]
    ) -> list[WorkflowExecutionRecord]:
        """The rows with their jobs' executions, read in one query for all of them."""
        children: dict[str, list[ExecutionRecord]] = {row.id: [] for row in rows}
        if children:
            found = session.scalars(
                select(ExecutionRow)
                .where(ExecutionRow.workflow_execution_id.in_(list(children)))
                .options(selectinload(ExecutionRow.steps))
            )
            for child in found:
                children[str(child.workflow_execution_id)].append(ExecutionRecord.of(child))
        return [WorkflowExecutionRecord.of(row, children[row.id]) for row in rows]
