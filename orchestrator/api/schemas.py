"""The JSON shapes the API answers with (its OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.store import ExecutionRecord, StepRecord

Layer = Literal["bronze", "silver", "gold"]
# A flow run's process sends its log lines in batches (every 2 s by default) and the last
# when it exits; a crashed or cancelled one never logs its final line. This long after the
# execution ended, whatever it logged has arrived, even on a machine so loaded that the
# process takes many seconds to exit.
LOG_FLUSH_SECONDS = 60.0


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Step(BaseModel):
    layer: str
    status: str = Field(description="PENDING, RUNNING, COMPLETED, FAILED or SKIPPED")
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    run_id: str | None
    rows_in: int | None
    rows_out: int | None
    rows_rejected: int | None
    manifest_key: str | None
    warnings: list[str]
    quality: dict[str, Any] = Field(description="The layer's quality report (rules, reasons)")
    error: str | None

    @classmethod
    def of(cls, step: StepRecord) -> Step:
        duration = None
        if step.started_at and step.finished_at:
            duration = round((step.finished_at - step.started_at).total_seconds(), 3)
        return cls(duration_seconds=duration, **_fields(step, cls))


class Execution(BaseModel):
    id: str
    workflow_id: str
    job_id: str
    status: str = Field(description="PENDING, RUNNING, COMPLETED, FAILED, CRASHED or CANCELLED")
    layers: list[str]
    full_refresh: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    flow_run_id: str | None
    error: str | None
    balance: dict[str, Any] | None = Field(description="The row balance sheet")
    steps: list[Step]
    cause: str | None = Field(
        default=None,
        description="What started it: manual, upload, schedule, or follow-up (it waited for "
        "a running execution of its job)",
    )

    @classmethod
    def of(cls, execution: ExecutionRecord) -> Execution:
        duration = None
        if execution.started_at and execution.finished_at:
            duration = round((execution.finished_at - execution.started_at).total_seconds(), 3)
        fields = _fields(execution, cls, skip={"steps"})
        return cls(duration_seconds=duration, steps=[Step.of(s) for s in execution.steps], **fields)


def _fields(record: object, model: type[BaseModel], skip: set[str] = frozenset()) -> dict:  # type: ignore[type-arg, assignment]
    return {
        name: getattr(record, name)
        for name in model.model_fields
        if name not in skip and name != "duration_seconds" and hasattr(record, name)
    }


class ExecutionPage(BaseModel):
    items: list[Execution]
    total: int
    limit: int
    offset: int


class TriggerRequest(BaseModel):
    from_layer: Layer = "bronze"
    full_refresh: bool = False


class TriggerState(BaseModel):
    on_upload: bool
    debounce_seconds: float
    pending: bool = Field(description="An upload (or a deferred scheduled run) waits to start")
    due_at: datetime | None = Field(description="When it starts, if the job is not running")
    files: int = Field(
        description="Landing files uploaded (or found by the scan) since it became pending"
    )
    waiting_for: str | None = Field(description="The running execution a follow-up run waits for")


class JobSchedule(BaseModel):
    cron: str
    timezone: str
    paused: bool
    next_run_at: datetime | None = Field(description="Null while paused")
    registered: bool = Field(description="Prefect has the schedule (on the deployment)")
    error: str | None = Field(description="Why the last sync with Prefect failed")


class JobSummary(BaseModel):
    workflow_id: str
    job_id: str
    name: str
    latest_execution: Execution | None
    trigger: TriggerState | None = None
    schedule: JobSchedule | None = None


class WorkflowSummary(BaseModel):
    id: str
    name: str
    jobs: list[str]
    updated_at: datetime


class WorkflowDetail(BaseModel):
    id: str
    name: str
    description: str
    dimensions: list[str]
    jobs: list[dict[str, Any]] = Field(
        description="Each job's definition: csv, silver, gold, trigger, schedule"
    )
    notify: dict[str, Any] | None = Field(
        default=None, description="Webhooks, their URLs masked (the path and query hold tokens)"
    )
    landing_retention_days: float | None = None


class NotificationCall(BaseModel):
    event: str = Field(description="failed, crashed or quality")
    url: str = Field(description="The webhook, masked")
    format: str = Field(description="json or slack")
    status: str = Field(description="pending, sent or failed (out of retries)")
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None


class UploadedFile(BaseModel):
    name: str
    key: str
    size_bytes: int


class Uploaded(BaseModel):
    workflow_id: str
    job_id: str
    files: list[UploadedFile]
    trigger_due_at: datetime | None = Field(
        default=None,
        description="With trigger.on_upload: when the job starts, unless more files come "
        "first (or once its running execution ends)",
    )


class Dimension(BaseModel):
    name: str
    run_id: str
    rows: int
    columns: list[list[str]] = Field(description="[name, type] pairs")
    created_at: datetime
    source: str
    warnings: list[str] = Field(
        default_factory=list, description="From an upload: why a CSV column stayed text"
    )


class LogLine(BaseModel):
    timestamp: datetime
    level: int
    level_name: str
    logger: str
    message: str
    flow_run_id: str | None
    task_run_id: str | None


class LogPage(BaseModel):
    execution_id: str
    flow_run_id: str | None
    items: list[LogLine]
    limit: int
    offset: int
    complete: bool = Field(
        description="True once the flow run has ended and Prefect holds all its log lines "
        "(its final 'Finished in state' line has arrived, or it ended more than "
        f"{LOG_FLUSH_SECONDS:g} s ago). While false, more lines may arrive: read again."
    )


class Preview(BaseModel):
    name: str = Field(description="Model name, or the quarantine/rejects object's name")
    key: str
    rows: int = Field(description="Rows in the whole object")
    columns: list[str]
    preview: list[dict[str, Any]] = Field(
        description="The first rows, values as JSON. Decimals, dates, times and 64-bit "
        "integers (Int64, UInt64: JavaScript numbers are exact only to 2^53) are strings, "
        'e.g. `"_row_hash": "9007199254740993"`; binary is hex.'
    )


class Previews(BaseModel):
    execution_id: str
    layer: str
    run_id: str | None = Field(description="The run whose committed output is shown")
    current: bool = Field(description="False when a later run has replaced this execution's")
    items: list[Preview]
