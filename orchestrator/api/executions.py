"""Executions: trigger a job, list (filtered, paginated), get one with its steps, cancel."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from fastapi.concurrency import run_in_threadpool

from orchestrator.api.context import Context, ExecutionId, JobId, WorkflowId, ids
from orchestrator.api.schemas import Execution, ExecutionPage, TriggerRequest
from orchestrator.store import ExecutionRecord
from orchestrator.trigger import cancel_execution, trigger_execution

router = APIRouter(tags=["executions"])
Status = Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CRASHED", "CANCELLED"]


@router.post(
    "/api/workflows/{workflow_id}/jobs/{job_id}/executions",
    response_model=Execution,
    status_code=201,
)
async def trigger(
    ctx: Context,
    workflow_id: WorkflowId,
    job_id: JobId,
    request: Annotated[TriggerRequest | None, Body()] = None,
) -> Execution:
    """Starts the job through the Prefect deployment; 409 names the execution already going."""
    ids(workflow_id=workflow_id, job_id=job_id)
    options = request or TriggerRequest()
    execution = await run_in_threadpool(
        trigger_execution,
        ctx.settings,
        workflow_id,
        job_id,
        options.from_layer,
        options.full_refresh,
        store=ctx.store,
        runner=ctx.runner,
        forget=options.forget,
    )
    ctx.activity.touch()
    return Execution.of(execution)


@router.get("/api/executions", response_model=ExecutionPage)
def list_executions(
    ctx: Context,
    workflow_id: Annotated[str | None, Query(max_length=64)] = None,
    job_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ExecutionPage:
    """Newest first."""
    filters = {k: v for k, v in (("workflow_id", workflow_id), ("job_id", job_id)) if v}
    ids(**filters)
    ctx.reconciler.now()
    items = ctx.store.list_executions(workflow_id, job_id, status, limit, offset)
    total = ctx.store.count_executions(workflow_id, job_id, status)
    return ExecutionPage(
        items=[Execution.of(e) for e in items], total=total, limit=limit, offset=offset
    )


@router.get("/api/executions/{execution_id}", response_model=Execution)
def get_execution(ctx: Context, execution_id: ExecutionId) -> Execution:
    return Execution.of(read_execution(ctx, execution_id))


@router.post("/api/executions/{execution_id}/cancel", response_model=Execution)
async def cancel(ctx: Context, execution_id: ExecutionId) -> Execution:
    """Cancels a PENDING or RUNNING execution (and its Prefect flow run); 409 otherwise."""
    # Reconciled first (one that crashed in Prefect is 409 CRASHED, not cancelled); whether
    # it is still running is decided by cancel_execution, atomically, not by this read.
    await run_in_threadpool(read_execution, ctx, execution_id)
    ended = await run_in_threadpool(cancel_execution, ctx.settings, execution_id, ctx.store)
    ctx.activity.touch()
    return Execution.of(ended)


def read_execution(ctx: Context, execution_id: str) -> ExecutionRecord:
    """The execution, reconciled with Prefect first when it is still active."""
    ids(execution_id=execution_id)
    execution = ctx.store.get_execution(execution_id)
    if execution.active:
        ctx.reconciler.now()
        execution = ctx.store.get_execution(execution_id)
    return execution
