"""Jobs: every job of every workflow with its latest execution (for the jobs page)."""

from __future__ import annotations

from fastapi import APIRouter

from orchestrator.api.context import Context, JobId, WorkflowId, ids
from orchestrator.api.schemas import Execution, JobSummary

router = APIRouter(tags=["jobs"])


@router.get("/api/jobs", response_model=list[JobSummary])
def list_jobs(ctx: Context) -> list[JobSummary]:
    """Every job of every workflow, in definition order, with its latest execution."""
    ctx.reconciler.now()
    found = []
    for summary in ctx.store.list_workflows():
        workflow = ctx.store.get_workflow(summary.id)
        found += [summary_of(ctx, workflow.id, job.id, job.name) for job in workflow.jobs]
    return found


@router.get("/api/workflows/{workflow_id}/jobs/{job_id}", response_model=JobSummary)
def get_job(ctx: Context, workflow_id: WorkflowId, job_id: JobId) -> JobSummary:
    ids(workflow_id=workflow_id, job_id=job_id)
    _, job = ctx.store.get_job(workflow_id, job_id)
    ctx.reconciler.now()
    return summary_of(ctx, workflow_id, job_id, job.name)


def summary_of(ctx: Context, workflow_id: str, job_id: str, name: str) -> JobSummary:
    latest = ctx.store.list_executions(workflow_id, job_id, limit=1)
    return JobSummary(
        workflow_id=workflow_id,
        job_id=job_id,
        name=name,
        latest_execution=Execution.of(latest[0]) if latest else None,
    )
