"""Upload triggers: a job with `trigger.on_upload` starts once uploads to its landing
prefix have been quiet for `debounce_seconds`.

Uploads through FlowForge (the API, the UI, `flowforge upload`) call note_uploads(); files
put into S3 directly are found by scan_landing() (one listing per job, ETags compared with
what the store has seen). Either way the job's trigger in the store becomes pending, due
at the last upload + debounce, so files uploaded together start one execution and the
state survives a restart. fire_due() starts the due ones; a job that is running keeps its
trigger pending (`waiting_for` that execution) and gets one follow-up run when it ends,
however many files arrived meanwhile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flowforge.errors import Conflict, FlowForgeError, NotFound
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.landing import ingested, landing_files
from orchestrator.runner import InProcessRunner
from orchestrator.store import ExecutionRecord, PendingTrigger, Store
from orchestrator.store.models import utcnow
from orchestrator.trigger import trigger_execution
from orchestrator.workflows import Job

log = logging.getLogger(__name__)
# After a failed start (Prefect unreachable), the trigger is tried again this much later.
RETRY_AFTER = timedelta(seconds=30)


def note_uploads(store: Store, job: Job, workflow_id: str, files: dict[str, str]) -> bool:
    """Records files (key -> ETag) uploaded through FlowForge; starts the job's debounce
    when it has `trigger.on_upload`. Returns whether it did."""
    if not job.trigger.on_upload or not files:
        return False
    due = utcnow() + timedelta(seconds=job.trigger.debounce_seconds)
    store.mark_pending(workflow_id, job.id, "upload", due)
    # Seen (after: counted from pending_since on), so the scan does not start it again.
    store.see_landing(workflow_id, job.id, files)
    return True


@dataclass(frozen=True)
class ScanResult:
    job: JobKey
    new_files: list[str]


def scan_landing(settings: Settings, store: Store, objects: ObjectStore) -> list[ScanResult]:
    """Lists the landing prefix of every job with trigger.on_upload; a file whose key and
    ETag the store has not seen, and bronze has not ingested, makes the job pending."""
    found = []
    for summary in store.list_workflows():
        workflow = store.get_workflow(summary.id)
        for job in workflow.jobs:
            if not job.trigger.on_upload:
                continue
            key = JobKey(workflow.id, job.id)
            try:
                new = _scan_job(settings, store, objects, key, job)
            except FlowForgeError as exc:  # the object store is down: the next scan
                log.warning("landing scan of %s failed: %s", key, exc.message)
                continue
            if new:
                found.append(ScanResult(key, new))
    return found


def _scan_job(
    settings: Settings, store: Store, objects: ObjectStore, key: JobKey, job: Job
) -> list[str]:
    listed_at = utcnow()
    listing = {k: o.etag for k, o in landing_files(objects, key).items()}
    seen = store.landing_seen(key.workflow_id, key.job_id)
    changed = {k: etag for k, etag in listing.items() if seen.get(k) != etag}
    new: list[str] = []
    if changed:
        # A file bronze already holds (ingested before the scan ever saw it, after a
        # restart with an empty view) starts nothing.
        done = ingested(settings, key)
        new = sorted(k for k, etag in changed.items() if (k, etag) not in done)
        if new:
            due = utcnow() + timedelta(seconds=job.trigger.debounce_seconds)
            store.mark_pending(key.workflow_id, key.job_id, "upload", due)
        store.see_landing(key.workflow_id, key.job_id, changed)
    store.forget_landing(key.workflow_id, key.job_id, set(seen) - set(listing), listed_at)
    if new:
        log.info("landing scan: %d new files for %s", len(new), key, extra={"files": new[:10]})
    return new


def fire_due(
    settings: Settings,
    store: Store,
    runner: InProcessRunner | None = None,
    now: datetime | None = None,
) -> list[ExecutionRecord]:
    """Starts every due trigger whose job is not running; returns the executions started."""
    started = []
    for pending in store.due_triggers(now or utcnow()):
        execution = _fire(settings, store, runner, pending)
        if execution is not None:
            started.append(execution)
    return started


def _fire(
    settings: Settings, store: Store, runner: InProcessRunner | None, pending: PendingTrigger
) -> ExecutionRecord | None:
    w, j = pending.workflow_id, pending.job_id
    try:
        store.get_job(w, j)
    except NotFound:  # the job was removed from its workflow
        store.drop_trigger(w, j)
        return None
    running = store.active_execution(w, j)
    if running is not None:
        if pending.waiting_for != running.id:
            store.wait_for(w, j, running.id)
            log.info("%s/%s is running (%s): one follow-up run is pending", w, j, running.id)
        return None
    if not store.claim_trigger(pending):  # another process fired it, or an upload moved it
        return None
    cause = "follow-up" if pending.waiting_for else pending.cause
    try:
        execution = trigger_execution(settings, w, j, store=store, runner=runner, cause=cause)
    except Conflict as exc:  # started by hand between the check and the claim: follow it
        store.mark_pending(w, j, pending.cause, utcnow())
        store.trigger_fired(w, j, None, exc.message)
        return None
    except FlowForgeError as exc:
        store.mark_pending(w, j, pending.cause, utcnow() + RETRY_AFTER)
        store.trigger_fired(w, j, None, exc.message)
        log.warning("could not start %s/%s: %s (again in %s)", w, j, exc.message, RETRY_AFTER)
        return None
    store.trigger_fired(w, j, execution.id)
    log.info("started %s/%s (%s): execution %s", w, j, cause, execution.id)
    return execution
