"""A job's landing files (list, delete one) and deleting a workflow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from flowforge.landing import delete_landing_file, delete_workflow_data, landing_files
from flowforge.layout import JobKey
from orchestrator.api.context import Context, JobId, WorkflowId, ids
from orchestrator.api.errors import responses
from orchestrator.api.schemas import Deleted, LandingFile, LandingFiles

router = APIRouter(tags=["jobs"])
FileName = Annotated[str, Path(min_length=1, max_length=1024, description="A landing file name.")]


@router.get("/api/workflows/{workflow_id}/jobs/{job_id}/files", response_model=LandingFiles)
def list_files(ctx: Context, workflow_id: WorkflowId, job_id: JobId) -> LandingFiles:
    """The job's landing files (what its next bronze run reads)."""
    ids(workflow_id=workflow_id, job_id=job_id)
    ctx.store.get_job(workflow_id, job_id)  # 404 for an unknown job
    found = landing_files(ctx.objects, JobKey(workflow_id, job_id))
    return LandingFiles(
        workflow_id=workflow_id,
        job_id=job_id,
        files=[
            LandingFile(
                name=o.key.rsplit("/", 1)[-1],
                key=o.key,
                size_bytes=o.size,
                etag=o.etag,
                last_modified=o.last_modified,
            )
            for o in found
        ],
    )


@router.delete(
    "/api/workflows/{workflow_id}/jobs/{job_id}/files/{name}",
    status_code=204,
    responses=responses(404),
)
async def delete_file(
    ctx: Context, workflow_id: WorkflowId, job_id: JobId, name: FileName
) -> Response:
    """Deletes one landing file. Its rows stay in bronze until a run forgets it (trigger
    with `forget: [name]`) or a full refresh ingests landing again."""
    ids(workflow_id=workflow_id, job_id=job_id)
    await run_in_threadpool(ctx.store.get_job, workflow_id, job_id)
    job = JobKey(workflow_id, job_id)
    await run_in_threadpool(delete_landing_file, ctx.objects, job, name)
    return Response(status_code=204)


@router.delete(
    "/api/workflows/{workflow_id}", response_model=Deleted, responses=responses(404, 409)
)
async def delete_workflow(
    ctx: Context,
    workflow_id: WorkflowId,
    data: Annotated[
        bool, Query(description="Also delete its landing files and every table of it.")
    ] = False,
) -> Deleted:
    """Deletes a workflow, its jobs and their executions (409 while one runs); with
    `data=true` also its landing files and all its tables."""
    ids(workflow_id=workflow_id)
    executions = await run_in_threadpool(ctx.store.delete_workflow, workflow_id)
    objects = await run_in_threadpool(delete_workflow_data, ctx.objects, workflow_id) if data else 0
    return Deleted(workflow_id=workflow_id, executions=executions, objects=objects)
