"""Store calls behind runs that start themselves: pending triggers (debounce, follow-ups),
what the landing scan has seen, and the schedules' pause state.

A trigger is one row per job, pending while `due_at` is set. Every upload moves `due_at`
to now + debounce and counts one more `generation`; the process that fires the trigger
claims it with one conditional UPDATE on the generation it read, so of two processes (two
API replicas) one fires it, and an upload that arrives meanwhile leaves it pending for one
follow-up run.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from orchestrator.store.automation_models import JobScheduleRow, JobTriggerRow, LandingSeenRow
from orchestrator.store.database import reconnecting
from orchestrator.store.models import utcnow
from orchestrator.store.records import aware


@dataclass(frozen=True)
class PendingTrigger:
    workflow_id: str
    job_id: str
    due_at: datetime
    pending_since: datetime
    cause: str
    waiting_for: str | None
    generation: int
    files: int = 0  # landing files uploaded or found since it became pending

    @classmethod
    def of(cls, row: JobTriggerRow, files: int = 0) -> PendingTrigger:
        assert row.due_at is not None
        return cls(
            row.workflow_id, row.job_id, aware(row.due_at) or row.due_at,
            aware(row.pending_since) or row.due_at, row.cause, row.waiting_for,
            row.generation, files,
        )  # fmt: skip


@dataclass(frozen=True)
class ScheduleState:
    workflow_id: str
    job_id: str
    paused: bool
    prefect_schedule_id: str | None
    synced_at: datetime | None
    error: str | None


def upsert(
    engine: Engine, table: Any, values: dict[str, Any], keys: list[str], **changes: Any
) -> Any:
    """INSERT values, or on a key already there UPDATE with `changes` (SQLite, PostgreSQL)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    return statement.on_conflict_do_update(index_elements=keys, set_=changes or values)


class TriggerRecords:
    engine: Engine
    reconnect_seconds: float

    def _session(self) -> AbstractContextManager[Session]:  # Store's
        raise NotImplementedError

    # -- triggers ----------------------------------------------------------------
    @reconnecting
    def mark_pending(self, workflow_id: str, job_id: str, cause: str, due_at: datetime) -> None:
        """The job starts at `due_at` (or once it is no longer running); a pending trigger
        is moved there. Call it before recording the files that made it pending (they are
        counted from `pending_since` on)."""
        t = JobTriggerRow.__table__
        now = utcnow()
        values = {
            "workflow_id": workflow_id, "job_id": job_id, "due_at": due_at,
            "pending_since": now, "cause": cause, "generation": 1,
        }  # fmt: skip
        statement = upsert(
            self.engine, t, values, ["workflow_id", "job_id"],
            due_at=due_at,
            pending_since=case((t.c.due_at.is_(None), now), else_=t.c.pending_since),
            cause=cause,
            generation=t.c.generation + 1,
        )  # fmt: skip
        with self._session() as session:
            session.execute(statement)

    @reconnecting
    def due_triggers(self, now: datetime) -> list[PendingTrigger]:
        query = select(JobTriggerRow).where(JobTriggerRow.due_at <= now)
        with self._session() as session:
            return [
                PendingTrigger.of(r) for r in session.scalars(query.order_by(JobTriggerRow.due_at))
            ]

    @reconnecting
    def pending_trigger(self, workflow_id: str, job_id: str) -> PendingTrigger | None:
        """The job's pending trigger, with the distinct landing files seen since it became
        pending (an upload the scan also saw counts once)."""
        with self._session() as session:
            row = session.get(JobTriggerRow, (workflow_id, job_id))
            if row is None or row.due_at is None:
                return None
            files = session.scalar(
                select(func.count()).where(
                    LandingSeenRow.workflow_id == workflow_id,
                    LandingSeenRow.job_id == job_id,
                    LandingSeenRow.seen_at >= (row.pending_since or row.due_at),
                )
            )
            return PendingTrigger.of(row, int(files or 0))

    @reconnecting
    def wait_for(self, workflow_id: str, job_id: str, execution_id: str) -> None:
        """Records that the pending trigger waits for a running execution (a follow-up)."""
        with self._session() as session:
            session.execute(
                update(JobTriggerRow)
                .where(JobTriggerRow.workflow_id == workflow_id, JobTriggerRow.job_id == job_id)
                .values(waiting_for=execution_id)
            )

    @reconnecting
    def claim_trigger(self, pending: PendingTrigger) -> bool:
        """Takes the pending trigger for this process, unless it changed since it was read
        (another process fired it, or an upload moved it)."""
        with self._session() as session:
            result = session.execute(
                update(JobTriggerRow)
                .where(
                    JobTriggerRow.workflow_id == pending.workflow_id,
                    JobTriggerRow.job_id == pending.job_id,
                    JobTriggerRow.generation == pending.generation,
                    JobTriggerRow.due_at.is_not(None),
                )
                .values(
                    due_at=None,
                    pending_since=None,
                    waiting_for=None,
                    last_fired_at=utcnow(),
                    generation=JobTriggerRow.generation + 1,
                )  # fmt: skip
            )
            return cast(CursorResult[Any], result).rowcount == 1

    @reconnecting
    def trigger_fired(
        self, workflow_id: str, job_id: str, execution_id: str | None, error: str | None = None
    ) -> None:
        with self._session() as session:
            session.execute(
                update(JobTriggerRow)
                .where(JobTriggerRow.workflow_id == workflow_id, JobTriggerRow.job_id == job_id)
                .values(last_execution_id=execution_id, last_error=error)
            )

    @reconnecting
    def drop_trigger(self, workflow_id: str, job_id: str) -> None:
        with self._session() as session:
            _drop(session, JobTriggerRow, workflow_id, job_id)

    # -- the landing scan's view -------------------------------------------------
    @reconnecting
    def landing_seen(self, workflow_id: str, job_id: str) -> dict[str, str]:
        """key -> ETag of every landing object seen for the job."""
        query = select(LandingSeenRow.key, LandingSeenRow.etag).where(
            LandingSeenRow.workflow_id == workflow_id, LandingSeenRow.job_id == job_id
        )
        with self._session() as session:
            return {key: etag for key, etag in session.execute(query)}

    @reconnecting
    def see_landing(self, workflow_id: str, job_id: str, files: dict[str, str]) -> None:
        """Records these objects (key -> ETag) as seen now."""
        if not files:
            return
        now = utcnow()
        table = LandingSeenRow.__table__
        with self._session() as session:
            for key, etag in files.items():
                values = {"workflow_id": workflow_id, "job_id": job_id, "key": key,
                          "etag": etag, "seen_at": now}  # fmt: skip
                session.execute(
                    upsert(
                        self.engine,
                        table,
                        values,
                        ["workflow_id", "job_id", "key"],
                        etag=etag,
                        seen_at=now,
                    )  # fmt: skip
                )

    @reconnecting
    def forget_landing(
        self, workflow_id: str, job_id: str, keys: Iterable[str], seen_before: datetime
    ) -> None:
        """Forgets objects no longer in landing, unless seen after `seen_before` (an upload
        recorded while the listing that missed it was on its way)."""
        keys = list(keys)
        if not keys:
            return
        with self._session() as session:
            session.execute(
                delete(LandingSeenRow).where(
                    LandingSeenRow.workflow_id == workflow_id,
                    LandingSeenRow.job_id == job_id,
                    LandingSeenRow.key.in_(keys),
                    LandingSeenRow.seen_at < seen_before,
                )
            )

    # -- schedules -----------------------------------------------------------------
    @reconnecting
    def schedule_states(self) -> dict[tuple[str, str], ScheduleState]:
        with self._session() as session:
            return {
                (r.workflow_id, r.job_id): _schedule_state(r)
                for r in session.scalars(select(JobScheduleRow))
            }

    @reconnecting
    def save_schedule_state(
        self,
        workflow_id: str,
        job_id: str,
        *,
        paused: bool | None = None,
        prefect_schedule_id: str | None = None,
        error: str | None = None,
    ) -> ScheduleState:
        """Updates what is given (paused, the Prefect schedule's id, the last sync's
        error: None clears it)."""
        with self._session() as session:
            row = session.get(JobScheduleRow, (workflow_id, job_id))
            if row is None:
                row = JobScheduleRow(workflow_id=workflow_id, job_id=job_id, paused=False)
                session.add(row)
            if paused is not None:
                row.paused = paused
            if prefect_schedule_id is not None:
                row.prefect_schedule_id = prefect_schedule_id
            row.error, row.synced_at = error, utcnow()
            session.flush()
            return _schedule_state(row)

    @reconnecting
    def drop_schedule_state(self, workflow_id: str, job_id: str) -> None:
        with self._session() as session:
            _drop(session, JobScheduleRow, workflow_id, job_id)


def _schedule_state(row: JobScheduleRow) -> ScheduleState:
    return ScheduleState(
        row.workflow_id, row.job_id, row.paused, row.prefect_schedule_id,
        aware(row.synced_at), row.error,
    )  # fmt: skip


def _drop(session: Session, model: Any, workflow_id: str, job_id: str) -> None:
    session.execute(delete(model).where(model.workflow_id == workflow_id, model.job_id == job_id))
