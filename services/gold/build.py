"""Gold build of a job: its silver and dimensions at one version each in, a table per model out.

The models run in a process of the build's own (sandbox.py); this side checks the SQL,
resolves the input versions (inputs.py) and commits what the process wrote (commit.py).
The report's `table` is the folder of the job's model tables (gold/{w}/{j}; each model's
table and version are in `models`), `input_version` the silver version read, and
`manifest_key` the commit of the first model's table.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flowforge import tables
from flowforge.layout import JobKey
from flowforge.progress import Reporter, ignore
from flowforge.reports import Column, DataObject, LayerReport, ModelOutput
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.specs.gold import DEFAULT_PREVIEW_ROWS, PROFILE_MODEL, Model
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from services.gold.commit import (
    Part,
    Staged,
    commit_build,
    commit_key,
    committed_report,
    discard,
    new_part,
    replay,
)
from services.gold.engine import ModelRun, bounded_rows
from services.gold.guard import check_model_sql
from services.gold.inputs import TableInput, resolve
from services.gold.sandbox import BuildJob, Sandbox


@dataclass(frozen=True)
class BuildPlan:
    job: JobKey
    run_id: str
    models: list[Model] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    profile: bool = True
    preview_rows: int = DEFAULT_PREVIEW_ROWS

    def model_names(self) -> list[str]:
        return [m.name for m in self.models] + ([PROFILE_MODEL] if self.profile else [])


def build(
    settings: Settings,
    store: ObjectStore,
    sandbox: Sandbox,
    plan: BuildPlan,
    deadline: Deadline,
    progress: Reporter = ignore,
) -> LayerReport:
    """`progress` hears each model start (model k of n) and end, then committing."""
    started = time.monotonic()
    refs = {name: TableRef.gold_model(plan.job, name) for name in plan.model_names()}
    previous = committed_report(settings, list(refs.values()), plan.run_id)
    if previous is not None:
        return replay(settings, previous, plan.preview_rows)
    readable = {"silver"} | {f"dim_{name}".lower() for name in plan.dimensions}
    models = [Model(m.name, check_model_sql(m.name, m.sql, readable)) for m in plan.models]
    silver = resolve(
        settings, TableRef.silver(plan.job), f"silver of job {plan.job}", job_id=plan.job.job_id
    )
    dimensions = [
        resolve(settings, TableRef.dimension(name), f"dimension {name!r}", dimension=name)
        for name in plan.dimensions
    ]
    tables.require_conditional_writes(store)
    sql = {m.name: m.sql for m in models}
    parts = {
        name: new_part(name, ref, commit_inputs(silver, dimensions, sql.get(name, "")))
        for name, ref in refs.items()
    }
    job = BuildJob(
        views={"silver": silver.source()} | {f"dim_{d.dimension}": d.source() for d in dimensions},
        models=[(m.name, m.sql, parts[m.name].key) for m in models],
        preview_rows=plan.preview_rows,
        profile_key=parts[PROFILE_MODEL].key if plan.profile else None,
    )
    try:
        runs = sandbox.run(job, deadline, model_progress(progress, len(refs)))
        deadline.check("committing")  # a caller that gave up must not see a late commit
    except BaseException:
        # Nothing of a failed build stays behind; the committed tables were never touched.
        with contextlib.suppress(Exception):
            discard(store, [p.key for p in parts.values()])
        raise

    progress("committing")
    ordered = [parts[run.name] for run in runs]

    def report(staged: list[Staged], versions: list[int]) -> LayerReport:
        outputs = [
            model_output(run, part, version, [silver, *dimensions])
            for run, part, version in zip(runs, ordered, versions, strict=True)
        ]
        return LayerReport(
            layer="gold",
            workflow_id=plan.job.workflow_id,
            job_id=plan.job.job_id,
            run_id=plan.run_id,
            manifest_key=commit_key(staged[0].ref, versions[0]),
            output_prefix=f"gold/{plan.job.workflow_id}/{plan.job.job_id}/",
            table=f"gold/{plan.job.workflow_id}/{plan.job.job_id}",
            input_version=silver.version,
            input_run_id=silver.run_id,
            data_objects=[
                DataObject(key=o.key, size_bytes=o.size_bytes, rows=o.rows) for o in outputs
            ],
            rows_in=silver.rows or 0,
            rows_out=sum(o.rows for o in outputs),
            total_rows=sum(o.rows for o in outputs),
            models=outputs,
            warnings=warnings(runs),
            seconds=time.monotonic() - started,
        )

    return commit_build(settings, store, plan.run_id, ordered, report, deadline, plan.preview_rows)


def model_progress(progress: Reporter, total: int) -> Callable[[str | None, int], None]:
    """The sandbox's model callback, told to `progress` as model k of n."""
    progress(f"model 1 of {total}", models_done=0, models_total=total)

    def on_model(name: str | None, built: int) -> None:
        if name is None:
            progress(models_done=built)
        else:
            progress(f"model {built + 1} of {total} ({name})", models_done=built)

    return on_model


def commit_inputs(silver: TableInput, dimensions: list[TableInput], sql: str) -> dict[str, object]:
    """What a model's commit records about what it read (flowforge.inputs)."""
    inputs: dict[str, object] = {
        "silver": silver.recorded(),
        "dimensions": {d.dimension: d.recorded() for d in dimensions},
    }
    if sql:
        inputs["sql"] = hashlib.sha256(sql.encode()).hexdigest()
    return inputs


def warnings(runs: list[ModelRun]) -> list[str]:
    found = [w for run in runs for w in run.warnings]
    return found + [f"model {r.name!r} returned no rows" for r in runs if r.rows == 0]


def model_output(run: ModelRun, part: Part, version: int, read: list[TableInput]) -> ModelOutput:
    return ModelOutput(
        name=run.name,
        key=run.key,
        rows=run.rows,
        size_bytes=run.size_bytes,
        columns=[Column(name=n, type=t) for n, t in run.columns],
        preview_json="[" + ",".join(bounded_rows(run.preview_rows)) + "]",
        table=part.ref.path,
        version=version,
        inputs=[t.lineage() for t in read],
        seconds=round(run.seconds, 3),
    )
