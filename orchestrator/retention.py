"""Retention, so a long-running installation does not grow without bound: landing files a
workflow's `landing_retention_days` has passed, once bronze has ingested them, and ended
executions older than FLOWFORGE_EXECUTIONS_RETENTION_DAYS.

`flowforge retention` and the served deployment `flowforge-retention/landing-and-executions`
run it (`flowforge maintain` is to call apply_retention too, beside its table maintenance).

Kept, however old:
- a landing file bronze has not ingested (its key and ETag, orchestrator.landing.ingested);
- each job's newest landing file (bronze refuses a job whose landing is empty, so a later
  run of the job, a scheduled one say, still finds something to skip);
- every landing file of a job that is running (its bronze may be reading them);
- each job's latest execution, and every execution whose run is still part of a layer's
  committed output (committed_runs(): with Delta tables, the versions the maintenance
  keeps; switch it there).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flowforge.errors import FlowForgeError
from flowforge.layout import LAYERS, Dataset, JobKey
from flowforge.manifest import read_committed, referenced_runs
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.landing import ingested, landing_files
from orchestrator.store import Store
from orchestrator.store.models import utcnow

log = logging.getLogger(__name__)


@dataclass
class RetentionReport:
    landing_deleted: list[str] = field(default_factory=list)
    landing_not_ingested: list[str] = field(default_factory=list)  # old, kept
    executions_deleted: list[str] = field(default_factory=list)
    executions_kept: list[str] = field(default_factory=list)  # old, kept (latest, committed)
    skipped: list[str] = field(default_factory=list)  # why a job was left alone
    errors: list[str] = field(default_factory=list)


def apply_retention(
    settings: Settings,
    store: Store,
    objects: ObjectStore,
    dry_run: bool = False,
    now: datetime | None = None,
) -> RetentionReport:
    """Removes what retention allows (dry_run: only reports it)."""
    report = RetentionReport()
    now = now or utcnow()
    remove_landing(store, objects, report, dry_run, now)
    remove_executions(settings, store, objects, report, dry_run, now)
    return report


def remove_landing(
    store: Store, objects: ObjectStore, report: RetentionReport, dry_run: bool, now: datetime
) -> None:
    for summary in store.list_workflows():
        workflow = store.get_workflow(summary.id)
        if workflow.landing_retention_days is None:
            continue
        cutoff = now - timedelta(days=workflow.landing_retention_days)
        for job in workflow.jobs:
            key = JobKey(workflow.id, job.id)
            running = store.active_execution(workflow.id, job.id)
            if running is not None:
                report.skipped.append(f"landing of {key}: execution {running.id} is running")
                continue
            try:
                _remove_job_landing(store, objects, key, cutoff, report, dry_run)
            except FlowForgeError as exc:
                report.errors.append(f"landing of {key}: {exc.message}")


def _remove_job_landing(
    store: Store,
    objects: ObjectStore,
    key: JobKey,
    cutoff: datetime,
    report: RetentionReport,
    dry_run: bool,
) -> None:
    files = landing_files(objects, key)
    if not files:
        return
    newest = max(files.values(), key=lambda o: (o.last_modified or cutoff, o.key))
    old = [o for o in files.values() if o.last_modified and o.last_modified < cutoff]
    done = ingested(objects, key) if old else set()
    doomed = []
    for info in sorted(old, key=lambda o: o.key):
        if info.key == newest.key:
            continue
        if (info.key, info.etag) not in done:
            report.landing_not_ingested.append(info.key)
            continue
        # Looked at again just before: a file uploaded again under the same name since the
        # listing has another ETag, and bronze has not ingested that one.
        now_there = objects.head(info.key) if not dry_run else info
        if now_there is not None and now_there.etag == info.etag:
            doomed.append(info.key)
    if doomed and not dry_run:
        objects.delete_keys(doomed)
        store.forget_landing(key.workflow_id, key.job_id, doomed, utcnow() + timedelta(seconds=1))
        log.info("retention: %d landing files of %s deleted", len(doomed), key)
    report.landing_deleted += doomed


def remove_executions(
    settings: Settings,
    store: Store,
    objects: ObjectStore,
    report: RetentionReport,
    dry_run: bool,
    now: datetime,
) -> None:
    cutoff = now - timedelta(days=settings.executions_retention_days)
    old = store.ended_before(cutoff)
    if not old:
        return
    keep = store.latest_of_each_job()
    jobs: dict[JobKey, list[str]] = defaultdict(list)
    for execution_id, workflow_id, job_id in old:
        jobs[JobKey(workflow_id, job_id)].append(execution_id)
    doomed: list[str] = []
    for key, ids in jobs.items():
        try:
            committed = committed_runs(objects, key)
        except FlowForgeError as exc:  # unknown: keep them all this time
            report.errors.append(f"executions of {key}: {exc.message}")
            report.executions_kept += ids
            continue
        for execution_id in ids:
            kept = execution_id in keep or execution_id in committed
            (report.executions_kept if kept else doomed).append(execution_id)
    if doomed and not dry_run:
        store.delete_executions(doomed)
        log.info("retention: %d executions deleted", len(doomed))
    report.executions_deleted += doomed


def committed_runs(objects: ObjectStore, job: JobKey) -> set[str]:
    """The run ids (= execution ids) whose output a layer's committed manifest still
    holds: the executions whose previews and reports still describe live data."""
    runs: set[str] = set()
    for layer in LAYERS:
        dataset = Dataset.for_layer(layer, job)
        committed = read_committed(objects, dataset)
        if committed is not None:
            runs |= referenced_runs(committed.manifest, dataset)
    return runs
