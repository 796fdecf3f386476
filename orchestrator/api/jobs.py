"""Jobs: every job of every workflow with its latest execution, its upload trigger and its
schedule (for the jobs page)."""

from __future__ import annotations

from fastapi import APIRouter

from orchestrator.api.context import Context, JobId, WorkflowId, ids
from orchestrator.api.schemas import Execution, JobSchedule, JobSummary, TriggerState
from orchestrator.automation_spec import Schedule
from orchestrator.schedules import next_run
from orchestrator.store import ScheduleState
from orchestrator.workflows import Job

router = APIRouter(tags=["jobs"])


@router.get("/api/jobs", response_model=list[JobSummary])
def list_jobs(ctx: Context) -> list[JobSummary]:
    """Every job of every workflow, in definition order, with its latest execution."""
    ctx.reconciler.now()
    states = ctx.store.schedule_states()
    found = []
    for summary in ctx.store.list_workflows():
        workflow = ctx.store.get_workflow(summary.id)
        found += [summary_of(ctx, workflow.id, job, states) for job in workflow.jobs]
    return found


@router.get("/api/workflows/{workflow_id}/jobs/{job_id}", response_model=JobSummary)
def get_job(ctx: Context, workflow_id: WorkflowId, job_id: JobId) -> JobSummary:
    ids(workflow_id=workflow_id, job_id=job_id)
    _, job = ctx.store.get_job(workflow_id, job_id)
    ctx.reconciler.now()
    return summary_of(ctx, workflow_id, job, ctx.store.schedule_states())


def summary_of(
    ctx: Context, workflow_id: str, job: Job, states: dict[tuple[str, str], ScheduleState]
) -> JobSummary:
    latest = ctx.store.list_executions(workflow_id, job.id, limit=1)
    return JobSummary(
        workflow_id=workflow_id,
        job_id=job.id,
        name=job.name,
        latest_execution=Execution.of(latest[0]) if latest else None,
        trigger=trigger_of(ctx, workflow_id, job),
        schedule=schedule_of(job.schedule, states.get((workflow_id, job.id))),
    )


def trigger_of(ctx: Context, workflow_id: str, job: Job) -> TriggerState | None:
    pending = ctx.store.pending_trigger(workflow_id, job.id)
    if not job.trigger.on_upload and pending is None:
        return None
    return TriggerState(
        on_upload=job.trigger.on_upload,
        debounce_seconds=job.trigger.debounce_seconds,
        pending=pending is not None,
        due_at=pending.due_at if pending else None,
        files=pending.files if pending else 0,
        waiting_for=pending.waiting_for if pending else None,
    )


def schedule_of(schedule: Schedule | None, state: ScheduleState | None) -> JobSchedule | None:
    """A job's (or a workflow's) schedule, as FlowForge last saw it in Prefect."""
    if schedule is None:
        return None
    paused = bool(state and state.paused)
    return JobSchedule(
        cron=schedule.cron,
        timezone=schedule.timezone,
        paused=paused,
        next_run_at=None if paused else next_run(schedule),
        registered=bool(state and state.prefect_schedule_id and not state.error),
        error=state.error if state else None,
    )
