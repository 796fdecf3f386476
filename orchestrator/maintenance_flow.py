"""The Prefect flow `flowforge-maintenance`: `flowforge maintain` on a schedule, retention
first (a task), then a task per table, a table artifact of what was done (deployment
flowforge-maintenance/tables)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as current_flow_run

from flowforge import catalog
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from orchestrator.maintenance import TableMaintenance, maintain
from orchestrator.retention import RetentionReport, apply_retention
from orchestrator.runner import flow_context

MAINTENANCE_FLOW = "flowforge-maintenance"


@task(name="maintain-table", cache_policy=NO_CACHE)
def maintain_one(table: str, dry_run: bool, run_id: str) -> dict[str, Any]:
    with flow_context() as context:
        (done,) = maintain(
            context.settings,
            context.store,
            ObjectStore(context.settings),
            [TableRef.parse(table)],
            dry_run,
            run_id,
        )
        describe(done)
        return done.to_dict()


@task(name="retention", cache_policy=NO_CACHE)
def retain(dry_run: bool) -> dict[str, Any]:
    """Landing files and executions past their retention (orchestrator.retention)."""
    with flow_context() as context:
        report = apply_retention(
            context.settings, context.store, ObjectStore(context.settings), dry_run
        )
    describe_retention(report, dry_run)
    return asdict(report)


@flow(name=MAINTENANCE_FLOW, log_prints=False)
def maintenance(tables: list[str] | None = None, dry_run: bool = False) -> list[dict[str, Any]]:
    """Applies retention (not when given `tables`), then compacts and vacuums every
    FlowForge table (or `tables`), keeping every version an execution recorded; a table a
    running execution uses is skipped."""
    with flow_context() as context:
        if tables is None:  # first: the versions of the executions it deletes go now
            retain(dry_run)
        refs = (
            [TableRef.parse(t) for t in tables]
            if tables is not None
            else catalog.find_tables(ObjectStore(context.settings))
        )
        run_id = f"maintenance-{current_flow_run.id or 'local'}"
        results = [
            maintain_one.with_options(name=f"maintain {ref}")(ref.path, dry_run, run_id)
            for ref in refs
        ]
    create_table_artifact(
        table=results or [{"table": "(none)"}],
        key="flowforge-maintenance",
        description=f"FlowForge table maintenance{' (dry run)' if dry_run else ''}: "
        f"{len(results)} tables",
    )
    return results


def describe_retention(report: RetentionReport, dry_run: bool) -> None:
    logger = get_run_logger()
    logger.info(
        "retention: %s %d landing files and %d executions; kept %d old landing files bronze "
        "has not ingested and %d old executions (latest, or holding a current version)",
        "would delete" if dry_run else "deleted", len(report.landing_deleted),
        len(report.executions_deleted), len(report.landing_not_ingested),
        len(report.executions_kept),
    )  # fmt: skip
    for line in report.skipped:
        logger.info("retention: skipped %s", line)
    for line in report.errors:
        logger.warning("retention: %s", line)


def describe(done: TableMaintenance) -> None:
    logger = get_run_logger()
    if done.error:
        logger.warning("%s: %s", done.table, done.error)
    elif done.skipped:
        logger.info("%s: skipped (%s)", done.table, done.skipped)
    else:
        logger.info(
            "%s: %d files compacted into %d, %d deleted, versions kept %s",
            done.table, done.files_compacted, done.files_written, len(done.files_deleted),
            done.kept_versions,
        )  # fmt: skip
