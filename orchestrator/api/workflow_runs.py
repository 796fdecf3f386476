"""Workflow runs: start a whole workflow (every job, then its own models), list them, get
one with its jobs' executions and its models' lineage, cancel, preview a model."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from fastapi.concurrency import run_in_threadpool

from flowforge.errors import NotFound
from flowforge.specs.gold import parse_workflow_gold_spec
from flowforge.tables import TableRef
from flowforge.v1 import gold_pb2
from orchestrator.api.context import ApiContext, Context, ExecutionId, WorkflowId, ids
from orchestrator.api.outputs import Rows, Target, preview
from orchestrator.api.schemas import (
    GraphModel,
    Preview,
    WorkflowExecution,
    WorkflowExecutionPage,
    WorkflowRunRequest,
)
from orchestrator.store import WorkflowExecutionRecord
from orchestrator.trigger import cancel_workflow_execution, trigger_workflow_execution

router = APIRouter(tags=["workflow executions"])
ModelName = Annotated[str, Path(max_length=64, description="Workflow model name")]


@router.post(
    "/api/workflows/{workflow_id}/executions", response_model=WorkflowExecution, status_code=201
)
async def run_workflow(
    ctx: Context,
    workflow_id: WorkflowId,
    request: Annotated[WorkflowRunRequest | None, Body()] = None,
) -> WorkflowExecution:
    """Runs the whole workflow: every job (or `jobs`), then its own models. 409 names the
    workflow execution, or the job's execution, already going."""
    ids(workflow_id=workflow_id)
    options = request or WorkflowRunRequest()
    for i, job in enumerate(options.jobs):
        ids(**{f"jobs[{i}]": job})
    run = await run_in_threadpool(
        trigger_workflow_execution,
        ctx.settings,
        workflow_id,
        options.jobs,
        options.full_refresh,
        store=ctx.store,
        runner=ctx.runner,
    )
    ctx.activity.touch()
    return WorkflowExecution.of(run)


@router.get("/api/workflows/{workflow_id}/executions", response_model=WorkflowExecutionPage)
def list_workflow_executions(
    ctx: Context,
    workflow_id: WorkflowId,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> WorkflowExecutionPage:
    """The workflow's runs, newest first."""
    ids(workflow_id=workflow_id)
    ctx.store.get_workflow(workflow_id)  # 404 for an unknown workflow
    ctx.reconciler.now()
    runs = ctx.store.list_workflow_executions(workflow_id, limit, offset)
    return WorkflowExecutionPage(
        items=[WorkflowExecution.of(r) for r in runs], limit=limit, offset=offset
    )


@router.get("/api/workflow-executions/{execution_id}", response_model=WorkflowExecution)
def get_workflow_execution(ctx: Context, execution_id: ExecutionId) -> WorkflowExecution:
    """The workflow execution, its jobs' executions, its models and the model graph."""
    run = read_run(ctx, execution_id)
    return WorkflowExecution.of(run, graph_of(ctx, run.workflow_id))


def graph_of(ctx: ApiContext, workflow_id: str) -> list[GraphModel]:
    """What each of the workflow's models reads, from its SQL (none when it has no gold)."""
    workflow = ctx.store.get_workflow(workflow_id)
    spec = workflow.workflow_gold_spec()
    if spec is None:
        return []
    jobs = tuple(j.id for j in workflow.jobs)
    return list(_graph(workflow.id, jobs, spec.SerializeToString(deterministic=True)))


@functools.lru_cache(maxsize=64)
def _graph(workflow_id: str, jobs: tuple[str, ...], spec: bytes) -> tuple[GraphModel, ...]:
    """Parsed once per workflow definition: a run's page asks again every few seconds."""
    message = gold_pb2.WorkflowGoldSpec.FromString(spec)
    gold = parse_workflow_gold_spec(message, workflow_id, list(jobs))
    return tuple(
        GraphModel(name=m.name, jobs=m.jobs, models=m.models, dimensions=m.dimensions)
        for m in gold.models
    )


@router.post("/api/workflow-executions/{execution_id}/cancel", response_model=WorkflowExecution)
async def cancel(ctx: Context, execution_id: ExecutionId) -> WorkflowExecution:
    """Cancels a PENDING or RUNNING workflow execution and its running jobs; 409 otherwise."""
    await run_in_threadpool(read_run, ctx, execution_id)
    ended = await run_in_threadpool(
        cancel_workflow_execution, ctx.settings, execution_id, ctx.store
    )
    ctx.activity.touch()
    return WorkflowExecution.of(ended)


@router.get(
    "/api/workflow-executions/{execution_id}/models/{model}/preview", response_model=Preview
)
async def model_preview(
    ctx: Context, execution_id: ExecutionId, model: ModelName, limit: Rows = 20
) -> Preview:
    """The first rows of a workflow model at the version this workflow execution built."""
    return await run_in_threadpool(_model_preview, ctx, execution_id, model, limit)


def _model_preview(ctx: ApiContext, execution_id: str, model: str, limit: int) -> Preview:
    run = read_run(ctx, execution_id)
    found = next((m for m in run.models if m["name"] == model), None)
    if found is None or found.get("status") != "BUILT":
        names = ", ".join(m["name"] for m in run.models if m.get("status") == "BUILT")
        raise NotFound(
            f"workflow execution {execution_id!r} built no model {model!r}"
            + (f" (built: {names})" if names else "")
        )
    target = Target(model, TableRef(found["table"]), found["version"])
    return preview(ctx, target, execution_id, limit).item


def read_run(ctx: ApiContext, execution_id: str) -> WorkflowExecutionRecord:
    """The workflow execution, reconciled first when it is still active."""
    ids(execution_id=execution_id)
    run = ctx.store.get_workflow_execution(execution_id)
    if run.active:
        ctx.reconciler.now()
        run = ctx.store.get_workflow_execution(execution_id)
    return run
