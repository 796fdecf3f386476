"""Silver refine: the committed bronze dataset in, typed silver and a quarantine out, committed.

1. Read the bronze table's current version and check the spec against its columns.
2. Without column specs, infer each column's type from all its values (one streaming pass).
3. Cast, check and deduplicate in two passes (passes.py).
4. Fail, deleting this run's objects, if a rule or schema drift says so; else commit.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from flowforge.bronze_columns import AUDIT_COLUMNS as BRONZE_AUDIT
from flowforge.layout import Dataset, JobKey
from flowforge.manifest import (
    Committed,
    Manifest,
    ManifestColumn,
    commit,
    read_committed,
    start_run,
)
from flowforge.reports import Column, LayerReport
from flowforge.results import data_object, finish, replay
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.specs.silver import resolve_columns
from flowforge.specs.silver_model import Spec
from flowforge.storage import ObjectStore
from services.silver import report, transform
from services.silver.bronze import BronzeInput, read_bronze
from services.silver.engine import Workspace
from services.silver.passes import Outcome, Refinery


@dataclass(frozen=True)
class RefinePlan:
    job: JobKey
    run_id: str
    spec: Spec
    spec_json: dict[str, Any] = field(default_factory=dict)


def refine(
    store: ObjectStore, settings: Settings, plan: RefinePlan, deadline: Deadline
) -> LayerReport:
    started = time.monotonic()
    dataset = Dataset.for_layer("silver", plan.job)
    previous = read_committed(store, dataset)
    if previous is not None and previous.manifest.run_id == plan.run_id:
        return replay(previous)
    bronze = read_bronze(store, settings, plan.job)
    sources = [c for c in bronze.columns if c not in BRONZE_AUDIT]
    defaults, name_warnings = transform.default_targets(sources)
    columns = resolve_columns(plan.spec, sources, defaults)
    deadline.check("starting")
    run_prefix = start_run(store, dataset, plan.run_id, previous)
    try:
        with Workspace(settings) as work:
            outcome = Refinery(store, settings, plan, bronze, sources, work, deadline).run(
                columns, run_prefix, previous
            )
        if not plan.spec.columns:
            outcome.warnings[:0] = name_warnings
        manifest, result = describe(plan, dataset, bronze, previous, outcome, run_prefix)
        finish(result, manifest, started)
        deadline.check("committing")  # a caller that gave up must not see a late commit
    except BaseException:
        with contextlib.suppress(Exception):
            store.delete_prefix(run_prefix)
        raise
    commit(store, dataset, manifest, previous)
    return result


def describe(
    plan: RefinePlan,
    dataset: Dataset,
    bronze: BronzeInput,
    previous: Committed | None,
    out: Outcome,
    run_prefix: str,
) -> tuple[Manifest, LayerReport]:
    """The manifest to commit and the LayerResult to return."""
    drift = None
    if previous is not None:
        old = [(c.name, c.type) for c in previous.manifest.columns]
        drift = report.schema_drift(*transform.drift(old, out.schema))
    manifest = Manifest(
        dataset=dataset.prefix,
        run_id=plan.run_id,
        data_objects=out.data_objects,
        reject_objects=out.quarantine_objects,
        columns=[ManifestColumn(name=n, type=t) for n, t in out.schema],
        inputs={
            "bronze": {"run_id": bronze.run_id, "version": bronze.version, "rows": bronze.rows},
            "spec": plan.spec_json,
        },
    )
    result = LayerReport(
        layer="silver",
        workflow_id=plan.job.workflow_id,
        job_id=plan.job.job_id,
        run_id=plan.run_id,
        manifest_key=dataset.manifest_key,
        output_prefix=run_prefix,
        data_objects=[data_object(o) for o in out.data_objects],
        reject_objects=[data_object(o) for o in out.quarantine_objects],
        rows_in=out.rows_in,
        rows_out=out.rows_out,
        rows_rejected=out.rows_rejected,
        total_rows=out.rows_out,
        columns=[Column(name=n, type=t) for n, t in out.schema],
        warnings=out.warnings,
        rejected_by_reason=out.rejected_by_reason,
        duplicates_removed=out.duplicates_removed,
        duplicates=out.duplicates,
        quality=[c.result() for c in out.quality],
        drift=drift,
        input_run_id=bronze.run_id,
        input_version=bronze.version,
    )
    return manifest, result
