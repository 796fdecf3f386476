"""Job schedules as schedules of the Prefect deployment: `schedule: {cron, timezone}` on a
job becomes a schedule of `flowforge-medallion/...` with slug `flowforge:{w}/{j}` and the
parameters {workflow_id, job_id, cause: schedule}, visible (and pausable) in Prefect's UI.

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


def slug_of(workflow_id: str, job_id: str) -> str:
    return f"{SLUG_PREFIX}{workflow_id}/{job_id}"  # '/' is in no ID: slugs never collide


def parameters_of(workflow_id: str, job_id: str) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "job_id": job_id, "cause": "schedule"}


def next_run(schedule: Schedule, after: datetime | None = None) -> datetime | None:
    """The schedule's next time after `after` (now), computed by Prefect's own scheduler
    code, so it is the time Prefect's scheduled flow run gets."""
    from prefect.server.schemas.schedules import CronSchedule

    cron = CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    return next(iter(cron._get_dates_generator(n=1, start=after or utcnow())), None)


def sync_schedules(settings: Settings, store: Store) -> int:
    """Creates, updates and deletes the deployment's FlowForge schedules to match the
    stored jobs; returns how many it changed. Raises Unavailable when Prefect is down,
    NotFound when the deployment is not registered (both noted on each job's schedule)."""
    wanted = {
        slug_of(w.id, job.id): (w.id, job.id, job.schedule)
        for summary in store.list_workflows()
        for w in [store.get_workflow(summary.id)]
        for job in w.jobs
        if job.schedule is not None
    }
    states = store.schedule_states()
    if not wanted and not states:
        return 0  # nothing scheduled, nothing to remove: Prefect need not even be up
    try:
        with _prefect() as client:
            deployment_id = _deployment_id(client, settings)
            changed = _apply(client, store, deployment_id, wanted, states)
            if changed:
                _schedule_runs(client, deployment_id)
    except FlowForgeError as exc:
        for w, j, _ in wanted.values():
            store.save_schedule_state(w, j, error=exc.message)
        raise
    for w, j in set(states) - {(w, j) for w, j, _ in wanted.values()}:
        store.drop_schedule_state(w, j)
    return changed


def _apply(
    client: Any,
    store: Store,
    deployment_id: UUID,
    wanted: dict[str, tuple[str, str, Schedule]],
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
    for slug, (w, j, schedule) in wanted.items():
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
            log.info("schedule %s removed (its job has no schedule now)", slug)
            changed += 1
    return changed


def set_paused(
    settings: Settings, store: Store, workflow_id: str, job_id: str, paused: bool
) -> ScheduleState:
    """Pauses or resumes a job's schedule in Prefect, then records it."""
    _, job = store.get_job(workflow_id, job_id)
    if job.schedule is None:
        raise FailedPrecondition(f"job {workflow_id}/{job_id} has no schedule")
    slug = slug_of(workflow_id, job_id)
    with _prefect() as client:
        deployment_id = _deployment_id(client, settings)
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


def _deployment_id(client: Any, settings: Settings) -> UUID:
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(settings.deployment_name).id  # type: ignore[no-any-return]
    except ObjectNotFound:
        raise NotFound(
            f"Prefect has no deployment {settings.deployment_name!r}: is `flowforge up` or a "
            "worker serving it?"
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
