"""Pausing and resuming a job's or a workflow's schedule (in Prefect too), and the webhook
calls an execution made."""

from __future__ import annotations

from fastapi import APIRouter

from orchestrator.api.context import Context, ExecutionId, JobId, WorkflowId, ids
from orchestrator.api.jobs import schedule_of
from orchestrator.api.schemas import JobSchedule, NotificationCall
from orchestrator.notify import mask_url
from orchestrator.schedules import WORKFLOW_SCHEDULE, set_paused

router = APIRouter(tags=["jobs"])


@router.post(
    "/api/workflows/{workflow_id}/jobs/{job_id}/schedule/pause", response_model=JobSchedule
)
def pause_schedule(ctx: Context, workflow_id: WorkflowId, job_id: JobId) -> JobSchedule:
    """Pauses the job's schedule in Prefect (no scheduled run starts until it is resumed).
    409 when the job has no schedule, 503 when Prefect does not answer."""
    return _set(ctx, workflow_id, job_id, paused=True)


@router.post(
    "/api/workflows/{workflow_id}/jobs/{job_id}/schedule/resume", response_model=JobSchedule
)
def resume_schedule(ctx: Context, workflow_id: WorkflowId, job_id: JobId) -> JobSchedule:
    """Resumes the job's schedule in Prefect; its next run is at the next cron time."""
    return _set(ctx, workflow_id, job_id, paused=False)


@router.post("/api/workflows/{workflow_id}/schedule/pause", response_model=JobSchedule)
def pause_workflow_schedule(ctx: Context, workflow_id: WorkflowId) -> JobSchedule:
    """Pauses the workflow's own schedule (whole workflow runs) in Prefect. 409 when the
    workflow has no schedule, 503 when Prefect does not answer."""
    return _set(ctx, workflow_id, WORKFLOW_SCHEDULE, paused=True)


@router.post("/api/workflows/{workflow_id}/schedule/resume", response_model=JobSchedule)
def resume_workflow_schedule(ctx: Context, workflow_id: WorkflowId) -> JobSchedule:
    """Resumes the workflow's own schedule in Prefect."""
    return _set(ctx, workflow_id, WORKFLOW_SCHEDULE, paused=False)


def _set(ctx: Context, workflow_id: str, job_id: str, paused: bool) -> JobSchedule:
    ids(workflow_id=workflow_id)
    if job_id != WORKFLOW_SCHEDULE:
        ids(job_id=job_id)
    state = set_paused(ctx.settings, ctx.store, workflow_id, job_id, paused)
    if job_id == WORKFLOW_SCHEDULE:
        schedule = ctx.store.get_workflow(workflow_id).schedule
    else:
        schedule = ctx.store.get_job(workflow_id, job_id)[1].schedule
    shown = schedule_of(schedule, state)
    assert shown is not None  # set_paused refused one without a schedule
    return shown


@router.get(
    "/api/executions/{execution_id}/notifications",
    response_model=list[NotificationCall],
    tags=["executions"],
)
def list_notifications(ctx: Context, execution_id: ExecutionId) -> list[NotificationCall]:
    """The webhook calls the execution's end made (none for a workflow without `notify`,
    or before the notifier has looked: about a second after it ended)."""
    ids(execution_id=execution_id)
    ctx.store.get_execution(execution_id)  # 404 for an unknown one
    return [
        NotificationCall(
            event=n.event,
            url=mask_url(n.url),
            format=n.format,
            status=n.status,
            attempts=n.attempts,
            next_attempt_at=n.next_attempt_at if n.status == "pending" else None,
            sent_at=n.sent_at,
            last_error=n.last_error,
        )
        for n in ctx.store.notifications_of(execution_id)
    ]
