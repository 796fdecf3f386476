"""Schedules as schedules of the Prefect deployments: `schedule: {cron, timezone}` on a
job becomes a schedule of `flowforge-medallion/...` with slug `flowforge:{w}/{j}` and the
parameters {workflow_id, job_id, cause: schedule}; on a workflow, a schedule of
`flowforge-workflow/...` with slug `flowforge:{w}` and {workflow_id, cause: schedule} (a
whole workflow run). Both are visible (and pausable) in Prefect's UI.

sync_schedules() makes Prefect match the stored workflows: it runs when a workflow is
applied and every FLOWFORGE_SCHEDULE_SYNC_SECONDS in the API's automation loop, so a
deployment registered again, or a Prefect that was down, gets its schedules back. Whether a
schedule is paused is Prefect's to say (pausing in Prefect's UI shows here too); the store
keeps the last state seen, so a schedule created again keeps it. After a change Prefect is
asked to schedule the runs at once rather than at its scheduler's next loop.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from flowforge.errors import FailedPrecondition, FlowForgeError, NotFound, Unavailable
from flowforge.settings import Settings
from orchestrator.automation_spec import Schedule
from orchestrator.store import ScheduleState, Store
from orchestrator.store.models import utcnow
from orchestrator.trigger import prefect_api_configured

log = logging.getLogger(__name__)
SLUG_PREFIX = "flowforge:"


# The job id under which a workflow's own schedule keeps its state (no job id starts with _).
WORKFLOW_SCHEDULE = "_workflow"


def slug_of(workflow_id: str, job_id: str) -> str:
    if job_id == WORKFLOW_SCHEDULE:
        return f"{SLUG_PREFIX}{workflow_id}"
    return f"{SLUG_PREFIX}{workflow_id}/{job_id}"  # '/' is in no ID: slugs never collide


def parameters_of(workflow_id: str, job_id: str) -> dict[str, Any]:
    if job_id == WORKFLOW_SCHEDULE:
        return {"workflow_id": workflow_id, "cause": "schedule"}
    return {"workflow_id": workflow_id, "job_id": job_id, "cause": "schedule"}


@dataclass(frozen=True)
class Scheduled:
    """A schedule to have in Prefect: a job's (on the job deployment) or a workflow's own
    (job_id WORKFLOW_SCHEDULE, on the workflow deployment)."""

    workflow_id: str
    job_id: str
    schedule: Schedule

    def deployment(self, settings: Settings) -> str:
        if self.job_id == WORKFLOW_SCHEDULE:
            return settings.workflow_deployment_name
        return settings.deployment_name


def next_run(schedule: Schedule, after: datetime | None = None) -> datetime | None:
    """The schedule's next time after `after` (now), computed by Prefect's own scheduler
    code, so it is the time Prefect's scheduled flow run gets."""
    from prefect.server.schemas.schedules import CronSchedule

    cron = CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    return next(iter(cron._get_dates_generator(n=1, start=after or utcnow())), None)


def wanted_schedules(store: Store) -> dict[str, Scheduled]:
    """Every schedule the stored workflows ask for, by slug."""
    found: list[Scheduled] = []
    for summary in store.list_workflows():
        workflow = store.get_workflow(summary.id)
        if workflow.schedule is not None:
            found.append(Scheduled(workflow.id, WORKFLOW_SCHEDULE, workflow.schedule))
        found += [Scheduled(workflow.id, j.id, j.schedule) for j in workflow.jobs if j.schedule]
    return {slug_of(s.workflow_id, s.job_id): s for s in found}


def sync_schedules(settings: Settings, store: Store) -> int:
    """Creates, updates and deletes the deployments' FlowForge schedules to match the
    stored jobs and workflows; returns how many it changed. Raises Unavailable when Prefect
    is down, NotFound when a deployment is not registered (both noted on each schedule)."""
    wanted = wanted_schedules(store)
    states = store.schedule_states()
    if not wanted and not states:
        return 0  # nothing scheduled, nothing to remove: Prefect need not even be up
    changed = 0
    try:
        with _prefect() as client:
            for name in (settings.deployment_name, settings.workflow_deployment_name):
                mine = {k: s for k, s in wanted.items() if s.deployment(settings) == name}
                deployment_id = _deployment_id(client, name)
                done = _apply(client, store, deployment_id, mine, states)
                if done:
                    _schedule_runs(client, deployment_id)
                changed += done
    except FlowForgeError as exc:
        for s in wanted.values():
            store.save_schedule_state(s.workflow_id, s.job_id, error=exc.message)
        raise
    for w, j in set(states) - {(s.workflow_id, s.job_id) for s in wanted.values()}:
        store.drop_schedule_state(w, j)
    return changed


def _apply(
    client: Any,
    store: Store,
    deployment_id: UUID,
    wanted: dict[str, Scheduled],
    states: dict[tuple[str, str], ScheduleState],
) -> int:
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule

    existing = {
        s.slug: s
        for s in client.read_deployment_schedules(deployment_id)
        if s.slug and s.slug.startswith(SLUG_PREFIX)
    }
    changed = 0
    for slug, scheduled in wanted.items():
        w, j, schedule = scheduled.workflow_id, scheduled.job_id, scheduled.schedule
        cron = CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
        have = existing.get(slug)
        if have is None:
            state = states.get((w, j))
            paused = state.paused if state else False
            (created,) = client.create_deployment_schedules(
                deployment_id,
                [DeploymentScheduleCreate(schedule=cron, active=not paused,
                                          parameters=parameters_of(w, j), slug=slug)],
            )  # fmt: skip
            store.save_schedule_state(w, j, paused=paused, prefect_schedule_id=str(created.id))
            log.info("schedule %s registered: %s (%s)", slug, schedule.cron, schedule.timezone)
            changed += 1
            continue
        same = (
            isinstance(have.schedule, CronSchedule)
            and (have.schedule.cron, have.schedule.timezone) == (cron.cron, cron.timezone)
            and have.parameters == parameters_of(w, j)
        )
        if not same:
            client.update_deployment_schedule(
                deployment_id, have.id, schedule=cron, parameters=parameters_of(w, j)
            )
            log.info("schedule %s changed: %s (%s)", slug, schedule.cron, schedule.timezone)
            changed += 1
        # Prefect says whether it is paused (someone may have paused it in Prefect's UI).
        store.save_schedule_state(w, j, paused=not have.active, prefect_schedule_id=str(have.id))
    for slug, have in existing.items():
        if slug not in wanted:
            client.delete_deployment_schedule(deployment_id, have.id)
            log.info("schedule %s removed (it is no longer in its workflow)", slug)
            changed += 1
    return changed


def set_paused(
    settings: Settings, store: Store, workflow_id: str, job_id: str, paused: bool
) -> ScheduleState:
    """Pauses or resumes a job's schedule (job_id WORKFLOW_SCHEDULE: the workflow's own) in
    Prefect, then records it."""
    workflow = store.get_workflow(workflow_id)
    if job_id == WORKFLOW_SCHEDULE:
        if workflow.schedule is None:
            raise FailedPrecondition(f"workflow {workflow_id} has no schedule")
        scheduled = Scheduled(workflow_id, job_id, workflow.schedule)
    else:
        _, job = store.get_job(workflow_id, job_id)
        if job.schedule is None:
            raise FailedPrecondition(f"job {workflow_id}/{job_id} has no schedule")
        scheduled = Scheduled(workflow_id, job_id, job.schedule)
    slug = slug_of(workflow_id, job_id)
    with _prefect() as client:
        deployment_id = _deployment_id(client, scheduled.deployment(settings))
        have = _find(client, deployment_id, slug)
        if have is None:  # not registered yet (Prefect was down when it was applied)
            store.save_schedule_state(workflow_id, job_id, paused=paused)
            sync_schedules(settings, store)
            return store.schedule_states()[(workflow_id, job_id)]
        client.update_deployment_schedule(deployment_id, have.id, active=not paused)
        if not paused:
            _schedule_runs(client, deployment_id)
    log.info("schedule %s %s", slug, "paused" if paused else "resumed")
    return store.save_schedule_state(
        workflow_id, job_id, paused=paused, prefect_schedule_id=str(have.id)
    )


def _find(client: Any, deployment_id: UUID, slug: str) -> Any:
    return next(
        (s for s in client.read_deployment_schedules(deployment_id) if s.slug == slug), None
    )


@contextlib.contextmanager
def _prefect() -> Iterator[Any]:
    """A Prefect client; what fails on the way (connection errors, Prefect's HTTP errors)
    is Unavailable."""
    from prefect.client.orchestration import get_client

    if not prefect_api_configured():
        raise FailedPrecondition("schedules need a Prefect API (PREFECT_API_URL)")
    try:
        with get_client(sync_client=True) as client:
            yield client
    except FlowForgeError:
        raise
    except Exception as exc:
        raise Unavailable(f"Prefect did not answer: {type(exc).__name__}: {exc}"[:300]) from None


def _deployment_id(client: Any, name: str) -> UUID:
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(name).id  # type: ignore[no-any-return]
    except ObjectNotFound:
        raise NotFound(
            f"Prefect has no deployment {name!r}: is `flowforge up` or a worker serving it?"
        ) from None


def _schedule_runs(client: Any, deployment_id: UUID) -> None:
    """Prefect schedules the runs now (its scheduler loop would within a minute; a
    schedule's update deletes the deployment's scheduled runs until then)."""
    try:
        client.request(
            "POST", "/deployments/{id}/schedule", path_params={"id": deployment_id}, json={}
        ).raise_for_status()
    except Exception as exc:  # its scheduler does it anyway
        log.warning("Prefect did not schedule the runs now: %s", type(exc).__name__)
