"""Gold build: committed silver and dimensions in, one Parquet object per model out, one commit.

The models run in a process of the build's own (sandbox.py); this side checks the SQL,
resolves the committed inputs and commits what the process wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass, field

from deltalake import DeltaTable

from flowforge import tables
from flowforge.errors import FailedPrecondition
from flowforge.layout import Dataset, JobKey
from flowforge.manifest import (
    Committed,
    Manifest,
    ManifestObject,
    commit,
    read_committed,
    start_run,
)
from flowforge.reports import Column, LayerReport, ModelOutput
from flowforge.results import data_object, finish, replay
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.specs.gold import DEFAULT_PREVIEW_ROWS, Model
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from services.gold.engine import Inputs, ModelRun, bounded_rows
from services.gold.guard import check_model_sql
from services.gold.sandbox import BuildJob, Sandbox


@dataclass(frozen=True)
class BuildPlan:
    job: JobKey
    run_id: str
    models: list[Model] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    profile: bool = True
    preview_rows: int = DEFAULT_PREVIEW_ROWS


def build(store: ObjectStore, sandbox: Sandbox, plan: BuildPlan, deadline: Deadline) -> LayerReport:
    started = time.monotonic()
    dataset = Dataset.for_layer("gold", plan.job)
    previous = read_committed(store, dataset)
    if previous is not None and previous.manifest.run_id == plan.run_id:
        return replay(previous)
    readable = {"silver"} | {f"dim_{name}".lower() for name in plan.dimensions}
    models = [Model(m.name, check_model_sql(m.name, m.sql, readable)) for m in plan.models]
    silver = read_silver(store, plan.job)
    dimensions = {
        name: tables.require(store.settings, TableRef.dimension(name), f"dimension {name!r}")
        for name in plan.dimensions
    }
    inputs = Inputs(
        silver=[o.key for o in silver.manifest.data_objects],
        dimensions={n: dimension_keys(store.settings, n, t) for n, t in dimensions.items()},
    )
    run_prefix = start_run(store, dataset, plan.run_id, previous)
    try:
        job = BuildJob(
            inputs=inputs,
            output_prefix=run_prefix,
            models=[(m.name, m.sql) for m in models],
            profile=plan.profile,
            preview_rows=plan.preview_rows,
        )
        runs = sandbox.run(job, deadline)
        deadline.check("committing")  # a caller that gave up must not see a late commit
    except BaseException:
        # Nothing of a failed run stays behind; the committed output was never touched.
        with contextlib.suppress(Exception):
            store.delete_prefix(run_prefix)
        raise
    objects = [ManifestObject(key=r.key, size_bytes=r.size_bytes, rows=r.rows) for r in runs]
    manifest = Manifest(
        dataset=dataset.prefix,
        run_id=plan.run_id,
        data_objects=objects,
        inputs={
            "silver": {"run_id": silver.manifest.run_id, "etag": silver.etag},
            "dimensions": {n: {"version": t.version()} for n, t in dimensions.items()},
            "models": {m.name: hashlib.sha256(m.sql.encode()).hexdigest() for m in models},
        },
    )
    result = LayerReport(
        layer="gold",
        workflow_id=plan.job.workflow_id,
        job_id=plan.job.job_id,
        run_id=plan.run_id,
        manifest_key=dataset.manifest_key,
        output_prefix=run_prefix,
        data_objects=[data_object(o) for o in objects],
        rows_in=silver.manifest.total_rows,
        rows_out=sum(r.rows for r in runs),
        total_rows=sum(r.rows for r in runs),
        models=[model_output(r) for r in runs],
        input_run_id=silver.manifest.run_id,
        warnings=[f"model {r.name!r} returned no rows" for r in runs if r.rows == 0],
    )
    finish(result, manifest, started)
    commit(store, dataset, manifest, previous)
    return result


def read_silver(store: ObjectStore, job: JobKey) -> Committed:
    dataset = Dataset.for_layer("silver", job)
    silver = read_committed(store, dataset)
    if silver is None:
        raise FailedPrecondition(
            f"silver has not been committed for job {job} "
            f"(no s3://{store.bucket}/{dataset.manifest_key}): run silver first"
        )
    if not silver.manifest.data_objects:
        raise FailedPrecondition(
            f"the committed silver output of job {job} (run {silver.manifest.run_id}) "
            "lists no data files"
        )
    return silver


def dimension_keys(settings: Settings, name: str, table: DeltaTable) -> list[str]:
    """The object keys of the files of the dimension table's loaded version."""
    bucket = f"s3://{settings.s3_bucket}/"
    urls = tables.version_files(table, TableRef.dimension(name))
    return [url.removeprefix(bucket) for url in urls]


def model_output(run: ModelRun) -> ModelOutput:
    return ModelOutput(
        name=run.name,
        key=run.key,
        rows=run.rows,
        size_bytes=run.size_bytes,
        columns=[Column(name=n, type=t) for n, t in run.columns],
        preview_json="[" + ",".join(bounded_rows(run.preview_rows)) + "]",
    )
