"""Workflows: list, get one with its jobs and specs, apply a YAML definition."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from flowforge.errors import InvalidArgument
from orchestrator.api.context import Context, WorkflowId, ids
from orchestrator.api.errors import Unprocessable, responses
from orchestrator.api.jobs import schedule_of
from orchestrator.api.limits import read_body
from orchestrator.api.schemas import WorkflowDetail, WorkflowSummary
from orchestrator.notify import mask_url
from orchestrator.schedules import WORKFLOW_SCHEDULE
from orchestrator.store import ScheduleState
from orchestrator.workflows import Workflow, workflow_of
from orchestrator.yamlsource import SourceMap, dotted, load_yaml

router = APIRouter(prefix="/api/workflows", tags=["workflows"])
MAX_YAML_BYTES = 1 << 20


@router.get("", response_model=list[WorkflowSummary])
def list_workflows(ctx: Context) -> list[WorkflowSummary]:
    return [WorkflowSummary(**vars(w)) for w in ctx.store.list_workflows()]


@router.get("/{workflow_id}", response_model=WorkflowDetail)
def get_workflow(ctx: Context, workflow_id: WorkflowId) -> WorkflowDetail:
    ids(workflow_id=workflow_id)
    state = ctx.store.schedule_states().get((workflow_id, WORKFLOW_SCHEDULE))
    return detail(ctx.store.get_workflow(workflow_id), state)


@router.post(
    "",
    response_model=WorkflowDetail,
    responses=responses(408),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    },
)
async def apply_workflow(ctx: Context, request: Request) -> Response:
    """Validates a workflow YAML document (as the CLI does: 422 naming field and line) and
    stores it. Models give their SQL inline (`sql`): `sql_file` would read the server's disk.
    A document over 1 MB is 413, one of more than 20 000 values 422."""
    body = await read_body(
        request, MAX_YAML_BYTES, ctx.settings.api_body_timeout_seconds, "the workflow document"
    )
    # Decoding, parsing, validating and the answer's JSON take up to a second of CPU for a
    # large document: all in a worker thread, so the event loop keeps serving meanwhile.
    workflow, text = await anyio.to_thread.run_sync(parse_document, body, limiter=ctx.parses)
    await run_in_threadpool(ctx.store.save_workflow, workflow, text)
    ctx.automation.sync_soon()  # its jobs' schedules reach Prefect within a second
    answer = await run_in_threadpool(lambda: detail(workflow).model_dump_json().encode())
    return Response(answer, media_type="application/json")


def parse_document(body: bytes) -> tuple[Workflow, str]:
    """The workflow of a document sent to the API, parsed once, and its text; errors are
    422."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unprocessable("the workflow document is not UTF-8 text") from None
    try:
        data, source = load_yaml(text, "workflow.yaml")
        _refuse_sql_files(data, source)
        return workflow_of(data, source), text
    except InvalidArgument as exc:
        raise Unprocessable(exc.message) from None


def _refuse_sql_files(data: Any, source: SourceMap) -> None:
    jobs = data.get("jobs") if isinstance(data, dict) else None
    golds: list[tuple[tuple[str | int, ...], Any]] = [
        (("jobs", j, "gold"), job.get("gold"))
        for j, job in enumerate(jobs if isinstance(jobs, list) else [])
        if isinstance(job, dict)
    ]
    if isinstance(data, dict):
        golds.append((("gold",), data.get("gold")))  # the workflow's own models
    for at, gold in golds:
        models = gold.get("models") if isinstance(gold, dict) else None
        for m, model in enumerate(models if isinstance(models, list) else []):
            if isinstance(model, dict) and "sql_file" in model:
                path = (*at, "models", m, "sql_file")
                raise InvalidArgument(
                    f"{source.where(path)}: {dotted(path)} is not accepted over the API; "
                    "give the SQL inline as `sql`"
                )


def detail(workflow: Workflow, state: ScheduleState | None = None) -> WorkflowDetail:
    jobs: list[dict[str, Any]] = [job.model_dump(mode="json") for job in workflow.jobs]
    notify = workflow.notify.model_dump(mode="json") if workflow.notify else None
    for hook in notify["webhooks"] if notify else []:
        hook["url"] = mask_url(hook["url"])  # the token is in the path or query
    return WorkflowDetail(
        id=workflow.id,
        name=workflow.name,
        description=workflow.description,
        dimensions=workflow.dimensions,
        jobs=jobs,
        notify=notify,
        landing_retention_days=workflow.landing_retention_days,
        schedule=schedule_of(workflow.schedule, state),
    )
