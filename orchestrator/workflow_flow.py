"""The Prefect flow `flowforge-workflow`: a whole workflow's jobs, then its own models.

A workflow execution runs each of its jobs' executions (bronze -> silver -> job gold) as
a subflow of its own, at most FLOWFORGE_WORKFLOW_MAX_PARALLEL_JOBS at once, then builds
the workflow's models (GoldService.BuildWorkflow) over every job's committed silver: the
jobs it ran, and the last committed silver of the others (`--jobs`). A job that failed
leaves the models that read it SKIPPED, naming it; the others are built, and the workflow
execution ends FAILED naming the job. Thin like the job flow: it calls services and
records state; no data passes through it.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as current_flow_run

from flowforge.errors import Conflict, FlowForgeError
from flowforge.settings import Settings
from orchestrator.flow import error_message, medallion, plan_layers, transient
from orchestrator.layers import call_workflow_gold
from orchestrator.liveness import beating
from orchestrator.runner import flow_context
from orchestrator.store import (
    ExecutionRecord,
    ExecutionStatus,
    Store,
    WorkflowExecutionRecord,
)

WORKFLOW_FLOW = "flowforge-workflow"


@task(name="workflow-gold", cache_policy=NO_CACHE, retry_condition_fn=transient)
def build_workflow_models(workflow_id: str, run_id: str, failed_jobs: list[str]) -> dict[str, Any]:
    with flow_context() as context:
        workflow = context.store.get_workflow(workflow_id)
        get_run_logger().info(
            "gold: building the workflow models of %s (%d)", workflow_id, len(workflow.gold.models)
            if workflow.gold else 0,
        )  # fmt: skip
        return call_workflow_gold(context.settings, workflow, run_id, failed_jobs)


def _on_crashed(flow: Any, flow_run: Any, state: Any) -> None:
    _ended(flow_run, state, ExecutionStatus.CRASHED)


def _on_cancellation(flow: Any, flow_run: Any, state: Any) -> None:
    _ended(flow_run, state, ExecutionStatus.CANCELLED)


@flow(
    name=WORKFLOW_FLOW,
    log_prints=False,
    on_crashed=[_on_crashed],
    on_cancellation=[_on_cancellation],
)
def workflow_run(
    workflow_id: str,
    workflow_execution_id: str | None = None,
    jobs: list[str] | None = None,
    full_refresh: bool = False,
    cause: str = "manual",
) -> dict[str, Any]:
    """Runs the workflow's jobs (`jobs`: a subset; the others' committed silver is reused),
    then its own models. Without a workflow_execution_id (a scheduled run) it records its
    own workflow execution."""
    with flow_context() as context:
        store = context.store
        if workflow_execution_id is None:
            try:
                workflow_execution_id = store.create_workflow_execution(
                    workflow_id, list(jobs or []), plan_layers(), full_refresh, cause=cause
                ).id
            except Conflict as exc:
                if cause != "schedule":
                    raise
                get_run_logger().info("%s; this scheduled run is skipped", exc.message)
                return {"status": "SKIPPED", "reason": exc.message}
        run_id = workflow_execution_id
        try:
            store.start_workflow_execution(run_id, flow_run_id=current_flow_run.id)
        except Conflict as exc:  # cancelled before its flow run started: nothing to do
            get_run_logger().info("%s", exc.message)
            ended = store.get_workflow_execution(run_id).status
            return {"workflow_execution_id": run_id, "status": ended}
        try:
            every = context.settings.execution_heartbeat_seconds
            with beating(store, run_id, every, workflow=True):
                return run_workflow(context.settings, store, run_id)
        except Exception as exc:
            message = error_message(exc)
            if store.finish_workflow_execution(run_id, ExecutionStatus.FAILED, error=message):
                get_run_logger().error("workflow execution %s failed: %s", run_id, message)
            _end_children(
                store, run_id, ExecutionStatus.FAILED, f"the workflow run failed: {message}"
            )
            raise


def run_workflow(settings: Settings, store: Store, run_id: str) -> dict[str, Any]:
    """The jobs' executions (in parallel, bounded), then the workflow models."""
    run = store.get_workflow_execution(run_id)
    workflow = store.get_workflow(run.workflow_id)
    logger = get_run_logger()
    run_jobs(settings, run)
    run = store.get_workflow_execution(run_id)
    failed = {e.job_id: e for e in run.executions if e.status != ExecutionStatus.COMPLETED}
    if not run.active:  # cancelled from outside
        return {"workflow_execution_id": run_id, "status": run.status}
    for job, execution in failed.items():
        logger.warning("job %s ended %s: %s", job, execution.status, execution.error)
    if workflow.gold is not None and workflow.gold.models:
        try:
            summary = build_workflow_models.with_options(
                retries=len(settings.layer_retry_delays_seconds),
                retry_delay_seconds=list(settings.layer_retry_delays_seconds) or 0,
            )(run.workflow_id, run_id, sorted(failed))
        except Exception as exc:
            error = f"workflow gold: {error_message(exc)}"
            store.finish_workflow_execution(
                run_id, ExecutionStatus.FAILED, error=_jobs_error(failed) or error
            )
            _artifact(store, run_id)
            raise
        store.record_workflow_models(run_id, summary["models"], _gold_figures(summary))
    if failed:
        error = _jobs_error(failed)
        store.finish_workflow_execution(run_id, ExecutionStatus.FAILED, error=error)
        _artifact(store, run_id)
        raise FlowForgeError(error)
    store.finish_workflow_execution(run_id, ExecutionStatus.COMPLETED)
    logger.info("workflow execution %s completed", run_id)
    _artifact(store, run_id)
    return {"workflow_execution_id": run_id, "status": ExecutionStatus.COMPLETED.value}


def run_jobs(settings: Settings, run: WorkflowExecutionRecord) -> None:
    """Each job's execution as a subflow, at most workflow_max_parallel_jobs at once; a
    failed job does not stop the others (its own execution records why)."""
    with ThreadPoolExecutor(
        max_workers=settings.workflow_max_parallel_jobs, thread_name_prefix=f"workflow-{run.id}"
    ) as pool:
        futures = [
            pool.submit(contextvars.copy_context().run, _run_job, run, execution)
            for execution in run.executions
        ]
        for future in futures:
            future.result()


def _run_job(run: WorkflowExecutionRecord, execution: ExecutionRecord) -> None:
    with flow_context() as context:
        if not context.store.get_workflow_execution(run.id).active:
            context.store.finish_execution(
                execution.id, ExecutionStatus.CANCELLED, error="the workflow run was cancelled"
            )
            return
        try:
            medallion.with_options(flow_run_name=f"{run.workflow_id}/{execution.job_id}")(
                workflow_id=run.workflow_id,
                job_id=execution.job_id,
                execution_id=execution.id,
                full_refresh=run.full_refresh,
                cause=run.cause or "manual",
            )
        except Exception:  # recorded in the job's execution; the workflow reads it there
            get_run_logger().info("job %s failed", execution.job_id)


def _jobs_error(failed: dict[str, ExecutionRecord]) -> str:
    if not failed:
        return ""
    named = "; ".join(
        f"{job} {e.status.lower()}" + (f" ({e.error})" if e.error else "")
        for job, e in failed.items()
    )
    return f"job{'s' if len(failed) > 1 else ''} failed: {named}"


def _gold_figures(summary: dict[str, Any]) -> dict[str, Any]:
    keep = ("rows_in", "rows_out", "seconds", "warnings", "manifest_key", "table")
    return {k: summary[k] for k in keep}


def _end_children(store: Store, run_id: str, status: ExecutionStatus, error: str) -> None:
    for child in store.get_workflow_execution(run_id).executions:
        if child.active:
            store.finish_execution(child.id, status, error=error)


def _artifact(store: Store, run_id: str) -> None:
    run = store.get_workflow_execution(run_id)
    rows = [
        {"node": f"job {e.job_id}", "status": e.status, "rows": _rows_out(e),
         "error": e.error or ""}
        for e in run.executions
    ] + [
        {"node": f"model {m['name']}", "status": m.get("status", ""), "rows": m.get("rows", 0),
         "error": m.get("reason", "")}
        for m in run.models
    ]  # fmt: skip
    create_table_artifact(
        table=rows,
        key=f"{run.workflow_id}-workflow".lower().replace("_", "-"),
        description=f"FlowForge workflow execution {run.id}: {run.status}"
        + (f" ({run.error})" if run.error else ""),
    )


def _rows_out(execution: ExecutionRecord) -> int:
    done = [s.rows_out for s in execution.steps if s.rows_out is not None]
    return done[-1] if done else 0


def _ended(flow_run: Any, state: Any, status: ExecutionStatus) -> None:
    """State hook: a crashed or cancelled workflow run ends its execution and its jobs'."""
    with flow_context() as context:
        run_id = (flow_run.parameters or {}).get("workflow_execution_id")
        if not run_id:
            return
        message = getattr(state, "message", None) or f"flow run {status.value.lower()}"
        context.store.finish_workflow_execution(run_id, status, error=message)
        _end_children(context.store, run_id, status, message)
