"""The store's tables for runs that start themselves: pending triggers (the debounce and
follow-up state), what the landing scan has seen, schedules' pause state, webhook calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.store.models import Base, utcnow


class JobTriggerRow(Base):
    """One row per job that was ever triggered. Pending while `due_at` is set: the job
    starts once `due_at` has passed and it is not running (`waiting_for` names the
    execution a follow-up waits for). `generation` counts every change, so one store write
    decides which process fires it."""

    __tablename__ = "job_triggers"

    workflow_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    pending_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cause: Mapped[str] = mapped_column(String(16), default="upload")
    waiting_for: Mapped[str | None] = mapped_column(String(64))
    generation: Mapped[int] = mapped_column(Integer, default=0)
    last_execution_id: Mapped[str | None] = mapped_column(String(64))
    last_fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class LandingSeenRow(Base):
    """A landing object (key and ETag) the scan or an upload through FlowForge has seen."""

    __tablename__ = "landing_seen"

    workflow_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    etag: Mapped[str] = mapped_column(String(128))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobScheduleRow(Base):
    """A job's schedule as FlowForge last saw it in Prefect: paused or not, and why the last
    sync failed."""

    __tablename__ = "job_schedules"

    workflow_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool] = mapped_column(default=False)
    prefect_schedule_id: Mapped[str | None] = mapped_column(String(64))
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)


class NotificationRow(Base):
    """One webhook call for one ended execution: pending until sent or out of retries."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(8))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
