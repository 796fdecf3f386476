"""Store calls behind webhook notifications (an outbox: each call is a row, so retries
survive a restart and one process sends each) and behind the executions' retention."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from orchestrator.store.automation_models import NotificationRow
from orchestrator.store.database import reconnecting
from orchestrator.store.models import ACTIVE, ExecutionRow, utcnow
from orchestrator.store.records import ExecutionRecord, aware

_ACTIVE = [s.value for s in ACTIVE]


@dataclass(frozen=True)
class Notification:
    id: int
    execution_id: str
    event: str
    url: str
    format: str
    body: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, row: NotificationRow) -> Notification:
        return cls(
            row.id, row.execution_id, row.event, row.url, row.format, dict(row.body),
            row.status, row.attempts, aware(row.next_attempt_at) or row.next_attempt_at,
            aware(row.sent_at), row.last_error,
        )  # fmt: skip


class NoticeRecords:
    engine: Engine
    reconnect_seconds: float

    def _session(self) -> AbstractContextManager[Session]:  # Store's
        raise NotImplementedError

    # -- notifications -------------------------------------------------------------
    @reconnecting
    def unnoticed_executions(self, limit: int = 100) -> list[ExecutionRecord]:
        """Ended executions the notifier has not considered yet, oldest first."""
        query = (
            select(ExecutionRow)
            .where(ExecutionRow.status.not_in(_ACTIVE), ExecutionRow.noticed_at.is_(None))
            .options(selectinload(ExecutionRow.steps))
            .order_by(ExecutionRow.finished_at)
            .limit(limit)
        )
        with self._session() as session:
            return [ExecutionRecord.of(r) for r in session.scalars(query)]

    @reconnecting
    def notice(self, execution_id: str, calls: list[dict[str, Any]]) -> bool:
        """Marks the execution considered and queues its webhook calls (event, url, format,
        body), in one transaction; False when another process did it first."""
        with self._session() as session:
            decided = session.execute(
                update(ExecutionRow)
                .where(ExecutionRow.id == execution_id, ExecutionRow.noticed_at.is_(None))
                .values(noticed_at=utcnow())
            )
            if cast(CursorResult[Any], decided).rowcount != 1:
                return False
            session.add_all(
                NotificationRow(
                    execution_id=execution_id,
                    status="pending",
                    attempts=0,
                    next_attempt_at=utcnow(),
                    created_at=utcnow(),
                    **call,
                )  # fmt: skip
                for call in calls
            )
            return True

    @reconnecting
    def due_notifications(self, now: datetime, limit: int = 50) -> list[Notification]:
        query = (
            select(NotificationRow)
            .where(NotificationRow.status == "pending", NotificationRow.next_attempt_at <= now)
            .order_by(NotificationRow.next_attempt_at, NotificationRow.id)
            .limit(limit)
        )
        with self._session() as session:
            return [Notification.of(r) for r in session.scalars(query)]

    @reconnecting
    def claim_notification(self, notification: Notification, lease: timedelta) -> bool:
        """Takes the call for this process for `lease` (a process that dies while sending
        leaves it to another once the lease has passed)."""
        with self._session() as session:
            result = session.execute(
                update(NotificationRow)
                .where(
                    NotificationRow.id == notification.id,
                    NotificationRow.status == "pending",
                    NotificationRow.attempts == notification.attempts,
                )
                .values(attempts=notification.attempts + 1, next_attempt_at=utcnow() + lease)
            )
            return cast(CursorResult[Any], result).rowcount == 1

    @reconnecting
    def notification_done(
        self, notification_id: int, error: str | None, retry_at: datetime | None
    ) -> None:
        """Sent (no error), to be retried at `retry_at`, or given up (an error, no retry)."""
        with self._session() as session:
            row = session.get(NotificationRow, notification_id)
            if row is None:  # its execution was removed meanwhile
                return
            row.last_error = error
            if error is None:
                row.status, row.sent_at = "sent", utcnow()
            elif retry_at is not None:
                row.next_attempt_at = retry_at
            else:
                row.status = "failed"

    @reconnecting
    def notifications_of(self, execution_id: str) -> list[Notification]:
        query = select(NotificationRow).where(NotificationRow.execution_id == execution_id)
        with self._session() as session:
            return [Notification.of(r) for r in session.scalars(query.order_by(NotificationRow.id))]

    # -- retention ------------------------------------------------------------------
    @reconnecting
    def ended_before(self, cutoff: datetime) -> list[tuple[str, str, str]]:
        """(id, workflow, job) of executions that ended before `cutoff`, oldest first."""
        query = (
            select(ExecutionRow.id, ExecutionRow.workflow_id, ExecutionRow.job_id)
            .where(ExecutionRow.status.not_in(_ACTIVE), ExecutionRow.finished_at < cutoff)
            .order_by(ExecutionRow.finished_at)
        )
        with self._session() as session:
            return [(i, w, j) for i, w, j in session.execute(query)]

    @reconnecting
    def latest_of_each_job(self) -> set[str]:
        """The newest execution of every job."""
        newest = (
            select(
                ExecutionRow.id,
                func.row_number()
                .over(
                    partition_by=(ExecutionRow.workflow_id, ExecutionRow.job_id),
                    order_by=(ExecutionRow.created_at.desc(), ExecutionRow.id.desc()),
                )
                .label("rank"),
            )
        ).subquery()
        with self._session() as session:
            return set(session.scalars(select(newest.c.id).where(newest.c.rank == 1)))

    @reconnecting
    def delete_executions(self, ids: list[str]) -> int:
        """Removes these ended executions with their steps and notifications."""
        removed = 0
        with self._session() as session:
            for start in range(0, len(ids), 500):  # bounded IN lists
                result = session.execute(
                    delete(ExecutionRow).where(
                        ExecutionRow.id.in_(ids[start : start + 500]),
                        ExecutionRow.status.not_in(_ACTIVE),
                    )
                )
                removed += cast(CursorResult[Any], result).rowcount
        return removed
