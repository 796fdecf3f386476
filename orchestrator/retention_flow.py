"""The Prefect flow `flowforge-retention`: apply_retention() on a schedule (deployment
flowforge-retention/landing-and-executions, FLOWFORGE_RETENTION_CRON), with a table
artifact of what it removed."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flowforge.storage import ObjectStore
from orchestrator.retention import apply_retention
from orchestrator.runner import flow_context

RETENTION_FLOW = "flowforge-retention"
RETENTION_DEPLOYMENT = "landing-and-executions"


@flow(name=RETENTION_FLOW, log_prints=False)
def retention(dry_run: bool = False) -> dict[str, Any]:
    """Deletes ingested landing files past their workflow's landing_retention_days and
    ended executions past FLOWFORGE_EXECUTIONS_RETENTION_DAYS (see orchestrator.retention)."""
    with flow_context() as context:
        report = apply_retention(
            context.settings, context.store, ObjectStore(context.settings), dry_run
        )
    logger = get_run_logger()
    logger.info(
        "%s %d landing files and %d executions; kept %d old landing files bronze has not "
        "ingested and %d old executions still committed or latest",
        "would delete" if dry_run else "deleted", len(report.landing_deleted),
        len(report.executions_deleted), len(report.landing_not_ingested),
        len(report.executions_kept),
    )  # fmt: skip
    for line in report.skipped:
        logger.info("skipped %s", line)
    for line in report.errors:
        logger.warning("%s", line)
    create_table_artifact(
        table=[
            {"what": "landing files deleted", "count": len(report.landing_deleted)},
            {"what": "executions deleted", "count": len(report.executions_deleted)},
            {
                "what": "old landing files not ingested (kept)",
                "count": len(report.landing_not_ingested),
            },
            {"what": "old executions kept", "count": len(report.executions_kept)},
            {"what": "errors", "count": len(report.errors)},
        ],
        key="flowforge-retention",
        description=f"FlowForge retention{' (dry run)' if dry_run else ''}",
    )
    if report.errors:
        raise RuntimeError("; ".join(report.errors[:5]))
    return asdict(report)
