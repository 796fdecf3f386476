"""The Prefect flow `flowforge-medallion`: bronze -> silver -> gold over gRPC, thin.

It loads the job's definition, calls each layer through its client with a deadline, and
records every step in the executions store as it starts and ends. Transient errors
(UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED) are retried with backoff; anything
else fails the layer at once with the service's message, and later layers are SKIPPED.
After the layers the row balance sheet is checked. Prefect sees a table artifact, a log
line per step and an event per layer transition. No data passes through the flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import flow_run as current_flow_run

from flowforge.errors import Conflict, FailedPrecondition, FlowForgeError, InvalidArgument
from flowforge.layout import LAYERS, JobKey
from flowforge.settings import Settings
from orchestrator.balance import balance_sheet
from orchestrator.layers import call_layer, quality_of, table_versions
from orchestrator.liveness import beating
from orchestrator.runner import flow_context
from orchestrator.store import ExecutionStatus, StepStatus, Store
from orchestrator.store.models import utcnow
from orchestrator.workflows import Job

FLOW_NAME = "flowforge-medallion"


def plan_layers(from_layer: str = "bronze", to_layer: str | None = None) -> list[str]:
    """The layers from `from_layer` to `to_layer` (default: gold), in order."""
    for name, value in (("from_layer", from_layer), ("to_layer", to_layer or "gold")):
        if value not in LAYERS:
            raise InvalidArgument(f"{name} {value!r} is not one of {', '.join(LAYERS)}")
    first, last = LAYERS.index(from_layer), LAYERS.index(to_layer or "gold")
    if first > last:
        raise InvalidArgument(f"from_layer {from_layer!r} comes after to_layer {to_layer!r}")
    return list(LAYERS[first : last + 1])


def transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect's retry condition: retry only errors that may go away."""
    try:
        state.result()
    except FlowForgeError as exc:
        return exc.retryable
    except Exception:
        return False
    return True


@dataclass(frozen=True)
class Run:
    """One execution of one job, as the flow carries it from layer to layer."""

    execution_id: str
    workflow_id: str
    job: Job
    dimensions: list[str]
    layers: list[str]
    full_refresh: bool
    forget: list[str] = field(default_factory=list)  # landing files whose rows bronze removes

    def emit(self, layer: str, status: str, **payload: Any) -> None:
        """A Prefect event per layer transition (flowforge.layer.started, ...)."""
        emit_event(
            event=f"flowforge.layer.{status.lower()}",
            resource={
                "prefect.resource.id": f"flowforge.execution.{self.execution_id}",
                "prefect.resource.name": f"{self.workflow_id}/{self.job.id} {layer}",
                "flowforge.layer": layer,
                "flowforge.workflow": self.workflow_id,
                "flowforge.job": self.job.id,
            },
            payload={"status": status, **payload},
        )


@task(name="layer", cache_policy=NO_CACHE, retry_condition_fn=transient)
def run_layer(
    layer: str,
    execution_id: str,
    workflow_id: str,
    job: dict[str, Any],
    dimensions: list[str],
    full_refresh: bool,
    forget: list[str] | None = None,
) -> dict[str, Any]:
    with flow_context() as context:
        context.store.start_step(execution_id, layer, run_id=execution_id)
        logger = get_run_logger()
        definition = Job.model_validate(job)
        logger.info(
            "%s: calling the %s service for %s/%s", layer, layer, workflow_id, definition.id
        )
        store = context.store

        def on_progress(progress: dict[str, Any]) -> None:
            store.record_progress(execution_id, layer, progress)

        try:
            return call_layer(
                context.settings, layer, workflow_id, definition, dimensions, execution_id,
                full_refresh, forget or [], on_progress,
            )  # fmt: skip
        except FlowForgeError as exc:
            logger.warning("%s: %s (%s)", layer, exc.message, exc.status)
            raise


# State hooks take these parameter names: the flow engine passes them by position, the
# runner (which runs them when a flow run's process died) by keyword.
def _on_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    _ended(flow_run, state, "CRASHED")


def _on_cancellation(flow: Any, flow_run: Any, state: Any) -> None:
    _ended(flow_run, state, "CANCELLED")


@flow(
    name=FLOW_NAME,
    log_prints=False,
    on_crashed=[_on_crashed],
    on_cancellation=[_on_cancellation],
)
def medallion(
    workflow_id: str,
    job_id: str,
    execution_id: str | None = None,
    from_layer: str = "bronze",
    to_layer: str | None = None,
    full_refresh: bool = False,
    forget: list[str] | None = None,
    cause: str = "manual",
) -> dict[str, Any]:
    """Runs one job from `from_layer` to `to_layer`, reusing the committed earlier layers.
    Without an execution_id (a scheduled run) it records its own execution; `cause` says
    what started it; `forget`: landing files (deleted from landing) whose rows bronze
    removes."""
    with flow_context() as context:
        store = context.store
        if execution_id is None:
            layers = plan_layers(from_layer, to_layer)
            try:
                execution_id = store.create_execution(
                    workflow_id, job_id, layers, full_refresh, cause=cause
                ).id
            except Conflict as exc:
                if cause != "schedule":
                    raise
                return _deferred(store, workflow_id, job_id, exc)
        try:
            workflow, job = store.get_job(workflow_id, job_id)
            store.start_execution(execution_id, flow_run_id=current_flow_run.id)
            run = Run(
                execution_id,
                workflow_id,
                job,
                workflow.dimensions,
                store.get_execution(execution_id).layers,
                full_refresh,
                list(forget or []),
            )
            with beating(store, execution_id, context.settings.execution_heartbeat_seconds):
                return run_layers(context.settings, store, run)
        except Exception as exc:  # signals (cancellation, SIGTERM) are left to the state hooks
            message = (
                exc.message if isinstance(exc, FlowForgeError) else f"{type(exc).__name__}: {exc}"
            )
            if store.finish_execution(execution_id, ExecutionStatus.FAILED, error=message):
                get_run_logger().error("execution %s failed: %s", execution_id, message)
            raise


def _deferred(store: Store, workflow_id: str, job_id: str, busy: Conflict) -> dict[str, Any]:
    """A scheduled run that finds its job running: one follow-up, which the automation loop
    starts once the running execution has ended (more scheduled runs meanwhile: still one)."""
    store.mark_pending(workflow_id, job_id, "schedule", due_at=utcnow())
    running = store.active_execution(workflow_id, job_id)
    if running is not None:
        store.wait_for(workflow_id, job_id, running.id)
    get_run_logger().info("%s; a follow-up run starts when it ends", busy.message)
    return {"status": "DEFERRED", "reason": busy.message}


def run_layers(settings: Settings, store: Store, run: Run) -> dict[str, Any]:
    """Each layer in turn (a cancel stops the run before the next one), then the balance."""
    delays = list(settings.layer_retry_delays_seconds)
    results: dict[str, dict[str, Any]] = {}
    for index, layer in enumerate(run.layers):
        if not store.get_execution(run.execution_id).active:  # cancelled from outside
            raise FailedPrecondition(f"execution {run.execution_id} was ended before {layer}")
        run.emit(layer, "STARTED")
        call = run_layer.with_options(
            name=layer, retries=len(delays), retry_delay_seconds=delays or 0
        )
        try:
            summary = call(
                layer, run.execution_id, run.workflow_id, run.job.model_dump(mode="json"),
                run.dimensions, run.full_refresh, run.forget,
            )  # fmt: skip
        except Exception as exc:
            record_failure(store, run, layer, exc, skipped=run.layers[index + 1 :])
            raise
        results[layer] = summary
        record_success(store, run, layer, summary)
    return finish(store, run, results)


def record_success(store: Store, run: Run, layer: str, summary: dict[str, Any]) -> None:
    store.finish_step(
        run.execution_id,
        layer,
        StepStatus.COMPLETED,
        rows_in=summary["rows_in"],
        rows_out=summary["rows_out"],
        rows_rejected=summary["rows_rejected"],
        manifest_key=summary["manifest_key"],
        warnings=summary["warnings"],
        quality=quality_of(summary),
        tables=table_versions(summary, JobKey(run.workflow_id, run.job.id)),
    )
    counts = {k: summary[k] for k in ("rows_in", "rows_out", "rows_rejected")}
    get_run_logger().info(
        "%s: %d rows in, %d out, %d rejected, committed %s",
        layer, *counts.values(), summary["manifest_key"],
    )  # fmt: skip
    run.emit(layer, "COMPLETED", **counts)


def record_failure(store: Store, run: Run, layer: str, exc: Exception, skipped: list[str]) -> None:
    message = error_message(exc)
    store.finish_step(run.execution_id, layer, StepStatus.FAILED, error=message)
    store.finish_execution(run.execution_id, ExecutionStatus.FAILED, error=f"{layer}: {message}")
    run.emit(layer, "FAILED", error=message)
    for later in skipped:
        run.emit(later, "SKIPPED")
        get_run_logger().info("%s: skipped (%s failed)", later, layer)
    _artifact(store, run.execution_id)


def finish(store: Store, run: Run, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Checks the row balance sheet and ends the execution COMPLETED, or FAILED on a gap."""
    sheet = balance_sheet(results)
    if not sheet.balanced:
        error = "rows unaccounted for: " + "; ".join(sheet.gaps())
        store.finish_execution(
            run.execution_id, ExecutionStatus.FAILED, error=error, balance=sheet.to_dict()
        )
        _artifact(store, run.execution_id)
        raise FailedPrecondition(error)
    store.finish_execution(run.execution_id, ExecutionStatus.COMPLETED, balance=sheet.to_dict())
    get_run_logger().info(
        "execution %s completed; balance sheet %s", run.execution_id, sheet.figures
    )
    _artifact(store, run.execution_id)
    return {"execution_id": run.execution_id, "status": "COMPLETED", "balance": sheet.to_dict()}


def error_message(exc: Exception) -> str:
    return exc.message if isinstance(exc, FlowForgeError) else f"{type(exc).__name__}: {exc}"


def _artifact(store: Store, execution_id: str) -> None:
    execution = store.get_execution(execution_id)
    rows = [
        {
            "layer": s.layer,
            "status": s.status,
            "rows_in": s.rows_in,
            "rows_out": s.rows_out,
            "rows_rejected": s.rows_rejected,
            "attempts": s.attempts,
            "error": s.error or "",
        }
        for s in execution.steps
    ]
    create_table_artifact(
        table=rows,
        key=f"{execution.workflow_id}-{execution.job_id}".lower().replace("_", "-"),
        description=f"FlowForge execution {execution.id}: {execution.status}"
        + (f" ({execution.error})" if execution.error else ""),
    )


def _ended(flow_run: Any, state: Any, status: str) -> None:
    """State hook: a crashed or cancelled flow run ends its execution the same way."""
    with flow_context() as context:
        store = context.store
        execution_id = (flow_run.parameters or {}).get("execution_id")
        if not execution_id:
            found = store.execution_for_flow_run(str(flow_run.id))
            execution_id = found.id if found else None
        if execution_id:
            message = getattr(state, "message", None) or f"flow run {status.lower()}"
            store.finish_execution(execution_id, ExecutionStatus(status), error=message)
