"""Retention, so a long-running installation does not grow without bound: landing files a
workflow's `landing_retention_days` has passed, once bronze has ingested them, and ended
executions older than FLOWFORGE_EXECUTIONS_RETENTION_DAYS.

`flowforge maintain` and the served deployment `flowforge-maintenance/tables` run it
after the tables' maintenance. Deleting an execution also frees the table versions it
recorded: the maintenance keeps those however old, and vacuums them once nothing records
them any more.

Kept, however old:
- a landing file bronze has not ingested (its key and ETag, orchestrator.landing.ingested);
- each job's newest landing file (bronze refuses a job whose landing is empty, so a later
  run of the job, a scheduled one say, still finds something to skip);
- every landing file of a job that is running (its bronze may be reading them);
- each job's latest execution, and every execution that committed the current version of
  one of its tables (current_outputs(): its previews show what readers read now).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flowforge import tables
from flowforge.errors import FlowForgeError
from flowforge.layout import Dataset, JobKey
from flowforge.manifest import read_committed, referenced_runs
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from orchestrator.landing import ingested, landing_files
from orchestrator.store import ExecutionRecord, Store, TableRole
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
    remove_landing(settings, store, objects, report, dry_run, now)
    remove_executions(settings, store, objects, report, dry_run, now)
    return report


def remove_landing(
    settings: Settings,
    store: Store,
    objects: ObjectStore,
    report: RetentionReport,
    dry_run: bool,
    now: datetime,
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
                _remove_job_landing(settings, store, objects, key, cutoff, report, dry_run)
            except FlowForgeError as exc:
                report.errors.append(f"landing of {key}: {exc.message}")


def _remove_job_landing(
    settings: Settings,
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
    done = ingested(settings, key) if old else set()
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
    doomed: list[str] = []
    current = CurrentOutputs(settings, objects)
    for execution_id, _, _ in old:
        try:
            kept = execution_id in keep or current.holds(store.get_execution(execution_id))
        except FlowForgeError as exc:  # unknown: keep it this time
            report.errors.append(f"execution {execution_id}: {exc.message}")
            kept = True
        (report.executions_kept if kept else doomed).append(execution_id)
    if doomed and not dry_run:
        store.delete_executions(doomed)
        log.info("retention: %d executions deleted", len(doomed))
    report.executions_deleted += doomed


class CurrentOutputs:
    """Whether an execution committed what a table holds now: the current data version
    of a table it wrote (its output, rejects or quarantine, a gold model), or, for a layer
    still committed by manifest (gold before it writes tables), a run its manifest holds.
    Each table and manifest is read once."""

    WRITTEN = (TableRole.OUTPUT, TableRole.SIDE, TableRole.MODEL)

    def __init__(self, settings: Settings, objects: ObjectStore) -> None:
        self.settings, self.objects = settings, objects
        self._versions: dict[str, int | None] = {}
        self._runs: dict[JobKey, set[str]] = {}

    def holds(self, execution: ExecutionRecord) -> bool:
        for step in execution.steps:
            for written in step.tables:
                if written.role in self.WRITTEN and self._current(written.table) == written.version:
                    return True
        job = JobKey(execution.workflow_id, execution.job_id)
        if job not in self._runs:
            dataset = Dataset.for_layer("gold", job)
            committed = read_committed(self.objects, dataset)
            self._runs[job] = referenced_runs(committed.manifest, dataset) if committed else set()
        return execution.id in self._runs[job]

    def _current(self, path: str) -> int | None:
        if path not in self._versions:
            ref = TableRef.parse(path)
            with tables.delta_errors(f"reading {ref}", ref):
                table = tables.load(self.settings, ref)
                self._versions[path] = tables.data_version(table) if table else None
        return self._versions[path]
