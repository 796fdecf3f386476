"""Table maintenance (`flowforge maintain`, the flow `flowforge-maintenance`): small files
compacted, then files no kept version needs deleted once older than the retention.

Kept, however old: every version an execution recorded committing or reading (its previews
show it), and the bronze versions silver has not read yet (silver reads their inserts
from bronze's change data feed). A table a running execution may write or read is left
alone altogether: maintenance commits too (OPTIMIZE, VACUUM START/END), and a layer that
finds a commit it did not expect fails its own (ABORTED) rather than guess.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import DeltaError

from flowforge import catalog, tables
from flowforge.errors import FlowForgeError
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from orchestrator.store import ExecutionRecord, Store

log = logging.getLogger(__name__)
MAINTENANCE_KEY = "flowforge.maintenance"


@dataclass
class TableMaintenance:
    """What maintenance did to one table."""

    table: str
    skipped: str = ""  # why nothing was done
    files_compacted: int = 0  # small files rewritten into fewer
    files_written: int = 0
    files_deleted: list[str] = field(default_factory=list)  # by vacuum (or would be: dry run)
    kept_versions: list[int] = field(default_factory=list)
    # Recorded versions whose log Delta has already cleaned up (older than the table's
    # delta.logRetentionDuration, 30 days by default): no longer readable, so not kept.
    lost_versions: list[int] = field(default_factory=list)
    version: int | None = None  # the table's version afterwards
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "skipped": self.skipped,
            "files_compacted": self.files_compacted,
            "files_written": self.files_written,
            "files_deleted": len(self.files_deleted),
            "kept_versions": self.kept_versions,
            "lost_versions": self.lost_versions,
            "version": self.version,
            "error": self.error,
        }


def maintain(
    settings: Settings,
    store: Store,
    objects: ObjectStore,
    only: list[TableRef] | None = None,
    dry_run: bool = False,
    run_id: str = "",
) -> list[TableMaintenance]:
    """Maintains every table (or `only` these), one at a time; a table that fails is
    reported and the others are still maintained."""
    refs = only if only is not None else catalog.find_tables(objects)
    done = []
    for ref in refs:
        try:
            done.append(maintain_table(settings, store, ref, dry_run, run_id))
        except FlowForgeError as exc:
            log.warning("maintenance of %s failed: %s", ref, exc.message)
            done.append(TableMaintenance(ref.path, error=exc.message))
    return done


def maintain_table(
    settings: Settings, store: Store, ref: TableRef, dry_run: bool = False, run_id: str = ""
) -> TableMaintenance:
    result = TableMaintenance(ref.path)
    # Asked again per table: an execution that starts meanwhile keeps its tables to itself.
    busy = next((e for e in store.active_executions() if uses(store, e, ref)), None)
    if busy is not None:
        result.skipped = (
            f"execution {busy.id} of {busy.workflow_id}/{busy.job_id} is {busy.status.lower()}"
        )
        return result
    table = tables.load(settings, ref)
    if table is None:
        result.skipped = "no such table"
        return result
    properties = CommitProperties(custom_metadata={MAINTENANCE_KEY: run_id or "flowforge"})
    with tables.delta_errors(f"maintaining {ref}", ref):
        # Versions up to this one may still be read; compaction's own commit adds nothing.
        unread = unread_by_silver(settings, ref, table.version())
        if not dry_run:
            metrics = table.optimize.compact(commit_properties=properties)
            result.files_compacted = int(metrics.get("numFilesRemoved", 0))
            result.files_written = int(metrics.get("numFilesAdded", 0))
        latest = table.version()
        keep = sorted(v for v in store.recorded_versions(ref.path) | unread if 0 <= v <= latest)
        result.kept_versions, result.lost_versions = readable(settings, ref, keep)
        result.files_deleted = table.vacuum(
            retention_hours=retention_hours(settings),
            dry_run=dry_run,
            enforce_retention_duration=False,  # the setting is the retention: it may be short
            keep_versions=result.kept_versions or None,
            commit_properties=properties,
        )
        result.version = table.version()
    log.info(
        "maintained %s: %d files compacted into %d, %d deleted, versions %s kept",
        ref, result.files_compacted, result.files_written, len(result.files_deleted),
        result.kept_versions,
    )  # fmt: skip
    return result


def readable(settings: Settings, ref: TableRef, versions: list[int]) -> tuple[list[int], list[int]]:
    """The versions whose log is still there, and those whose log is gone (vacuum refuses
    to keep a version it cannot load). The log is kept from some version on, so the first
    loadable one decides."""
    for index, version in enumerate(versions):
        try:
            # Delta says "not a table" (None here) or fails, depending on the store.
            if tables.load(settings, ref, version) is None:
                continue
        except (FlowForgeError, DeltaError):
            continue
        return versions[index:], versions[:index]
    return [], versions


def retention_hours(settings: Settings) -> int:
    return int(settings.tables_retention_days * 24)


def uses(store: Store, execution: ExecutionRecord, ref: TableRef) -> bool:
    """Whether a running execution may write or read the table: its job's tables, its
    workflow's models and the dimensions its workflow reads."""
    if ref.job is not None:
        return (ref.job.workflow_id, ref.job.job_id) == (execution.workflow_id, execution.job_id)
    if ref.workflow_id is not None:
        return ref.workflow_id == execution.workflow_id
    name = ref.path.rsplit("/", 1)[-1]
    return name in store.get_workflow(execution.workflow_id).dimensions


def unread_by_silver(settings: Settings, ref: TableRef, latest: int) -> set[int]:
    """For a bronze table, the versions after the one silver last read: silver's next
    incremental run reads their inserts from the change data feed, so their files stay."""
    if ref.kind != "bronze" or ref.job is None:
        return set()
    silver = tables.load(settings, TableRef.silver(ref.job))
    last_read = last_bronze_version(silver) if silver is not None else None
    return set() if last_read is None else set(range(last_read + 1, latest + 1))


def last_bronze_version(silver: DeltaTable) -> int | None:
    """The bronze version silver's latest commit that read bronze says it read."""
    for commit in tables.history(silver, tables.HISTORY_SCAN):
        read = commit.inputs.get("bronze")
        if isinstance(read, dict) and isinstance(read.get("version"), int):
            return int(read["version"])
    return None
