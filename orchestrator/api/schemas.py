"""The JSON shapes the API answers with (its OpenAPI document is built from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from flowforge.catalog import TableSummary, TableView, json_rows
from flowforge.tables import Commit
from orchestrator.store import ExecutionRecord, StepRecord, WorkflowExecutionRecord

Layer = Literal["bronze", "silver", "gold"]
# A flow run's process sends its log lines in batches (every 2 s by default) and the last
# when it exits; a crashed or cancelled one never logs its final line. This long after the
# execution ended, whatever it logged has arrived, even on a machine so loaded that the
# process takes many seconds to exit.
LOG_FLUSH_SECONDS = 60.0


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class StepTable(BaseModel):
    role: Literal["output", "side", "input", "model"] = Field(
        description="output: the step's table, the version it committed; side: its rejects "
        "(bronze) or quarantine (silver) table; model: one gold model's table; input: the "
        "upstream table and the version the step read"
    )
    table: str = Field(description="The table's path in the bucket, e.g. silver/{w}/{j}")
    version: int = Field(description="The Delta version (`flowforge tables show --version`)")
    model: str | None = Field(default=None, description="The gold model (role model)")


class Progress(BaseModel):
    """How far a running step has got, as the layer last reported it (every field but
    `phase` may be missing: a layer reports what it knows)."""

    phase: str = Field(description="What the layer is doing, e.g. reading, casting, writing")
    fraction: float | None = Field(default=None, description="Done so far, 0..1; null: unknown")
    rows: int | None = Field(default=None, description="Rows handled so far")
    bytes_read: int | None = None
    bytes_total: int | None = None
    files_done: int | None = None
    files_total: int | None = None
    models_done: int | None = None
    models_total: int | None = None
    eta_seconds: float | None = Field(default=None, description="Estimated seconds left")
    updated_at: datetime | None = Field(default=None, description="When it was reported")

    @classmethod
    def of(cls, report: dict[str, Any], started_at: datetime | None) -> Progress:
        """A step's recorded report, with the fraction done (rows of a known total, else
        models, else bytes, else files) and the time left at the rate so far."""
        known = {k: v for k, v in report.items() if k in cls.model_fields and v is not None}
        progress = cls.model_validate(known | {"phase": report.get("phase") or "working"})
        fraction = None
        for done, total in (
            ("rows", "rows_total"),
            ("models_done", "models_total"),
            ("bytes_read", "bytes_total"),
            ("files_done", "files_total"),
        ):
            if isinstance(report.get(total), int) and report[total] > 0:
                fraction = min(1.0, max(0.0, (report.get(done) or 0) / report[total]))
                break
        progress.fraction = None if fraction is None else round(fraction, 4)
        if fraction and fraction < 1 and started_at and progress.updated_at:
            elapsed = (progress.updated_at - started_at).total_seconds()
            if elapsed > 0:
                progress.eta_seconds = round(elapsed * (1 - fraction) / fraction, 1)
        return progress


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
    tables: list[StepTable] = Field(
        description="The Delta table versions the step committed and read (empty until it "
        "completed, and for steps recorded before FlowForge kept versions)"
    )
    progress: Progress | None = Field(
        default=None,
        description="While the step runs: its last progress report (null when none came)",
    )

    @classmethod
    def of(cls, step: StepRecord) -> Step:
        duration = _seconds(step.started_at, step.finished_at)
        tables = [StepTable.model_validate(t, from_attributes=True) for t in step.tables]
        fields = _fields(step, cls, skip={"tables", "progress"})
        progress = Progress.of(step.progress, step.started_at) if step.progress else None
        return cls(duration_seconds=duration, tables=tables, progress=progress, **fields)


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
        duration = _seconds(execution.started_at, execution.finished_at)
        fields = _fields(execution, cls, skip={"steps"})
        return cls(duration_seconds=duration, steps=[Step.of(s) for s in execution.steps], **fields)


def _seconds(started: datetime | None, finished: datetime | None) -> float | None:
    """How long something took that has started and finished (None otherwise)."""
    if started is None or finished is None:
        return None
    return round((finished - started).total_seconds(), 3)


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
    forget: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Landing file names, deleted from landing, whose rows bronze removes.",
    )


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
    schedule: JobSchedule | None = Field(
        default=None, description="The workflow's own schedule (whole workflow runs), if any"
    )


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


class LandingFile(BaseModel):
    name: str
    key: str
    size_bytes: int
    etag: str
    last_modified: datetime | None = None


class LandingFiles(BaseModel):
    workflow_id: str
    job_id: str
    files: list[LandingFile]


class Deleted(BaseModel):
    workflow_id: str
    executions: int = Field(description="Executions deleted with the workflow.")
    objects: int = Field(description="Objects deleted (landing files and tables), with data.")


class Dimension(BaseModel):
    name: str
    run_id: str
    version: int = Field(description="the dimension table's version (one per upload)")
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
    name: str = Field(description="Model name, or quarantine (silver) / rejects (bronze)")
    key: str = Field(description="The table's path (before tables: the first object's key)")
    table: str | None = Field(description="The Delta table previewed, e.g. gold/{w}/{j}/{model}")
    version: int | None = Field(
        description="The table version shown: the one this execution committed (time travel)"
    )
    current: bool = Field(
        description="True while that version still holds the table's current rows (a later "
        "execution's commit makes it false; compaction and vacuum do not)"
    )
    latest_version: int | None = Field(
        default=None, description="The table's latest version when this was read"
    )
    rows: int = Field(description="Rows in the whole table at that version")
    columns: list[str]
    preview: list[dict[str, Any]] = Field(
        description="The first rows, values as JSON. Decimals, dates, times and 64-bit "
        "integers (Int64, UInt64: JavaScript numbers are exact only to 2^53) are strings, "
        'e.g. `"_row_hash": "9007199254740993"`; binary is hex.'
    )


class Previews(BaseModel):
    execution_id: str
    layer: str
    run_id: str | None = Field(description="The run that committed the versions shown")
    current: bool = Field(
        description="False when a later run has replaced this execution's output, or when "
        "this execution's own version is unknown and the latest one is shown instead"
    )
    items: list[Preview]


class TableCommit(BaseModel):
    version: int
    timestamp: datetime
    operation: str = Field(description="WRITE, MERGE, ... or OPTIMIZE / VACUUM (maintenance)")
    run_id: str | None = Field(description="The execution (run) that committed it")
    inputs: dict[str, Any] = Field(description="What the run read (flowforge.inputs)")

    @classmethod
    def of(cls, commit: Commit) -> TableCommit:
        return cls(
            version=commit.version,
            timestamp=commit.timestamp,
            operation=commit.operation,
            run_id=commit.run_id or None,
            inputs=commit.inputs,
        )


class TableInfo(BaseModel):
    table: str = Field(description="The table's path in the bucket")
    kind: str = Field(description="bronze, bronze rejects, silver, silver quarantine, ...")
    version: int = Field(description="The latest version")
    data_version: int = Field(description="The latest version that changed rows")
    rows: int
    size_bytes: int
    files: int
    last_commit_at: datetime
    last_operation: str
    run_id: str | None = Field(description="The run of the latest commit a layer made")

    @classmethod
    def of(cls, summary: TableSummary) -> TableInfo:
        return cls(
            table=summary.ref.path,
            kind=summary.ref.kind,
            version=summary.version,
            data_version=summary.data_version,
            rows=summary.files.rows,
            size_bytes=summary.files.size_bytes,
            files=summary.files.count,
            last_commit_at=summary.last_commit.timestamp,
            last_operation=summary.last_commit.operation,
            run_id=summary.run_id or None,
        )


class TableHistory(BaseModel):
    table: str
    items: list[TableCommit] = Field(description="Newest first")


class Column(BaseModel):
    name: str
    type: str


class TableDetail(BaseModel):
    table: str
    kind: str
    version: int = Field(description="The version shown")
    latest_version: int
    current: bool = Field(description="Whether this version still holds the current rows")
    commit: TableCommit | None = Field(description="The commit that made this version")
    rows: int = Field(description="Rows in the table at this version")
    size_bytes: int
    files: int
    columns: list[Column]
    preview: list[dict[str, Any]] = Field(
        description="The first rows, values as JSON as in Preview.preview (64-bit integers, "
        "decimals, dates and times as strings)"
    )

    @classmethod
    def of(cls, view: TableView) -> TableDetail:
        return cls(
            table=view.ref.path,
            kind=view.ref.kind,
            version=view.version,
            latest_version=view.latest_version,
            current=view.current,
            commit=TableCommit.of(view.commit) if view.commit else None,
            rows=view.files.rows,
            size_bytes=view.files.size_bytes,
            files=view.files.count,
            columns=[Column(name=n, type=t) for n, t in view.columns],
            preview=json_rows(view.head),
        )


class WorkflowRunRequest(BaseModel):
    jobs: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Only these jobs (default: all); the others' committed silver is reused",
    )
    full_refresh: bool = False


class ModelInput(BaseModel):
    table: str = Field(description="The Delta table read, e.g. silver/{w}/{job}")
    version: int = Field(description="The version read")
    run_id: str = Field(description="The execution that committed that version")
    job_id: str = Field(description="For a silver table: its job")
    dimension: str = Field(description="For a dimension: its name")


class WorkflowModel(BaseModel):
    name: str
    status: str = Field(description="BUILT, or SKIPPED (reason names the failed job)")
    reason: str
    rows: int
    seconds: float
    table: str | None = Field(description="The model's Delta table (null when skipped)")
    version: int | None = Field(description="The version this run committed")
    depends_on: list[str] = Field(description="The workflow models it reads")
    inputs: list[ModelInput] = Field(description="Lineage: every table version it read")

    @classmethod
    def of(cls, model: dict[str, Any]) -> WorkflowModel:
        built = model.get("status") == "BUILT"
        return cls(
            name=model["name"],
            status=model.get("status") or "",
            reason=model.get("reason") or "",
            rows=model.get("rows") or 0,
            seconds=model.get("seconds") or 0.0,
            table=model.get("table") if built else None,
            version=model.get("version") if built else None,
            depends_on=list(model.get("depends_on") or []),
            inputs=[ModelInput.model_validate(i) for i in model.get("inputs") or []],
        )


class GraphModel(BaseModel):
    name: str
    jobs: list[str] = Field(description="The jobs whose silver it reads (silver.<job>)")
    models: list[str] = Field(description="The workflow models it reads (gold.<model>)")
    dimensions: list[str] = Field(description="The dimensions it reads (dim_<name>)")


class WorkflowExecution(BaseModel):
    id: str
    workflow_id: str
    status: str = Field(description="PENDING, RUNNING, COMPLETED, FAILED, CRASHED or CANCELLED")
    jobs: list[str] = Field(description="The jobs run; the workflow's others were reused")
    full_refresh: bool
    cause: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    flow_run_id: str | None
    error: str | None
    executions: list[Execution] = Field(description="Its jobs' executions, in workflow order")
    models: list[WorkflowModel] = Field(
        description="The workflow's own models, in dependency order (empty until built)"
    )
    graph: list[GraphModel] = Field(
        default_factory=list,
        description="What each workflow model reads, from its SQL, in the order they run "
        "(the workflow as defined now): jobs -> silver tables -> models",
    )

    @classmethod
    def of(
        cls, run: WorkflowExecutionRecord, graph: list[GraphModel] | None = None
    ) -> WorkflowExecution:
        duration = _seconds(run.started_at, run.finished_at)
        fields = _fields(run, cls, skip={"executions", "models"})
        return cls(
            duration_seconds=duration,
            executions=[Execution.of(e) for e in run.executions],
            models=[WorkflowModel.of(m) for m in run.models],
            graph=graph or [],
            **fields,
        )


class WorkflowExecutionPage(BaseModel):
    items: list[WorkflowExecution]
    limit: int
    offset: int
