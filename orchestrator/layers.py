"""One call per layer, from a job definition to a plain summary of the LayerResult.

Everything here takes and returns plain values (IDs, dicts), so the flow's tasks can
retry it and Prefect can show its inputs; no data passes through, only counts and keys.
"""

from __future__ import annotations

import contextlib
from typing import Any

from flowforge.layout import JobKey
from flowforge.reports import LayerReport, SchemaDrift
from flowforge.settings import Settings
from flowforge.tables import TableRef
from flowforge.v1 import bronze_pb2, common_pb2, gold_pb2, silver_pb2
from orchestrator.clients import BronzeClient, GoldClient, SilverClient
from orchestrator.progress import Record
from orchestrator.store import TableRole, TableVersion
from orchestrator.workflows import Job, Workflow

# The table each layer reads (its report carries only the version read).
INPUT_TABLE = {"silver": TableRef.bronze, "gold": TableRef.silver}


def call_layer(
    settings: Settings,
    layer: str,
    workflow_id: str,
    job: Job,
    dimensions: list[str],
    run_id: str,
    full_refresh: bool = False,
    forget: list[str] | None = None,
    on_progress: Record | None = None,
) -> dict[str, Any]:
    """`on_progress` hears the layer's progress reports (at most one per
    progress_interval_seconds) while it runs, and the last one before it ends."""
    ref = common_pb2.JobRef(workflow_id=workflow_id, job_id=job.id)

    def watched(client: Any) -> contextlib.AbstractContextManager[None]:
        if on_progress is None:
            return contextlib.nullcontext()
        return client.watching(ref, run_id, on_progress, settings.progress_interval_seconds)

    if layer == "bronze":
        with BronzeClient(settings) as bronze, watched(bronze):
            result = bronze.ingest(
                bronze_pb2.IngestRequest(
                    job=ref,
                    run_id=run_id,
                    csv=job.csv.to_proto(),
                    full_refresh=full_refresh,
                    forget=forget or [],
                )
            )
    elif layer == "silver":
        with SilverClient(settings) as silver, watched(silver):
            result = silver.refine(
                silver_pb2.RefineRequest(
                    job=ref, run_id=run_id, spec=job.silver_spec(), full_refresh=full_refresh
                )
            )
    elif layer == "gold":
        with GoldClient(settings) as gold, watched(gold):
            result = gold.build(
                gold_pb2.BuildRequest(job=ref, run_id=run_id, spec=job.gold_spec(dimensions))
            )
    else:
        raise ValueError(f"unknown layer {layer!r}")
    return summarize(result)


def call_workflow_gold(
    settings: Settings, workflow: Workflow, run_id: str, failed_jobs: list[str]
) -> dict[str, Any]:
    """Builds the workflow's own models (GoldService.BuildWorkflow); models that read a
    job in `failed_jobs` come back SKIPPED."""
    spec = workflow.workflow_gold_spec()
    if spec is None:
        raise ValueError(f"workflow {workflow.id!r} has no gold of its own")
    with GoldClient(settings) as gold:
        result = gold.build_workflow(
            gold_pb2.BuildWorkflowRequest(
                workflow_id=workflow.id,
                run_id=run_id,
                spec=spec,
                jobs=[j.id for j in workflow.jobs],
                failed_jobs=failed_jobs,
            )
        )
    return summarize(result)


def summarize(result: LayerReport) -> dict[str, Any]:
    """The counts, keys and reports of a LayerReport as plain JSON-ready values."""
    drift = result.drift or SchemaDrift()
    return {
        "layer": result.layer,
        "run_id": result.run_id,
        "input_run_id": result.input_run_id,
        "manifest_key": result.manifest_key,
        "rows_in": result.rows_in,
        "rows_out": result.rows_out,
        "rows_rejected": result.rows_rejected,
        "total_rows": result.total_rows,
        "table": result.table,
        "table_version": result.table_version,
        "input_version": result.input_version,
        "input_from_version": result.input_from_version,
        "side_table": result.side_table,
        "side_version": result.side_version,
        "refresh": result.refresh,
        "refresh_reason": result.refresh_reason,
        "reused": result.reused,
        "seconds": round(result.seconds, 3),
        "warnings": list(result.warnings),
        "rejected_by_reason": dict(result.rejected_by_reason),
        "duplicates_removed": result.duplicates_removed,
        "rules": [r.model_dump() for r in result.quality],
        "drift": {
            "added": [c.name for c in drift.added],
            "removed": [c.name for c in drift.removed],
            "retyped": [c.name for c in drift.retyped],
        },
        "files": [
            {
                "key": f.key,
                "status": f.status,
                "rows": f.rows,
                "rows_rejected": f.rows_rejected,
                "delimiter": f.delimiter,
                "header": f.header,
                "encoding": f.encoding,
            }
            for f in result.files
        ],
        "models": [
            {
                "name": m.name,
                "key": m.key,
                "rows": m.rows,
                "preview_json": m.preview_json,
                "table": m.table,
                "version": m.version if m.table else None,
                "status": m.status,
                "seconds": round(m.seconds, 3),
                "reason": m.reason,
                "depends_on": list(m.depends_on),
                "inputs": [i.model_dump() for i in m.inputs],
            }
            for m in result.models
        ],
    }


def table_versions(summary: dict[str, Any], job: JobKey) -> list[TableVersion]:
    """The Delta table versions a layer's summary says it committed and read."""
    found = []
    if summary.get("table") and summary.get("table_version") is not None:
        found.append(TableVersion(TableRole.OUTPUT, summary["table"], summary["table_version"]))
    if summary.get("side_table") and summary.get("side_version") is not None:
        found.append(TableVersion(TableRole.SIDE, summary["side_table"], summary["side_version"]))
    for model in summary.get("models", []):
        if model.get("table") and model.get("version") is not None:
            found.append(
                TableVersion(TableRole.MODEL, model["table"], model["version"], model["name"])
            )
    upstream = INPUT_TABLE.get(summary["layer"])
    if upstream is not None and summary.get("input_version") is not None:
        found.append(TableVersion(TableRole.INPUT, upstream(job).path, summary["input_version"]))
    return found


def quality_of(summary: dict[str, Any]) -> dict[str, Any]:
    """What the store keeps as a step's quality report (counts live in their own columns)."""
    keep = ("rejected_by_reason", "duplicates_removed", "rules", "drift", "files", "models")
    return {k: summary[k] for k in keep} | {
        "reused": summary["reused"],
        "seconds": summary["seconds"],
        "input_run_id": summary["input_run_id"],
        "refresh": summary["refresh"],
        "refresh_reason": summary["refresh_reason"],
    }
