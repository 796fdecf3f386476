"""Gold build of a workflow: its models over the workflow's silver tables, all or none.

Each job's committed silver a model reads is resolved to its latest version outside the
sandbox, as are the listed dimensions; one build's process runs the models in dependency
order, each readable by the models after it as `gold.<model>` (a view over the part file
it just wrote), and once every model succeeded the service commits each to its table
gold/{w}/_workflow/{model}. A model that reads the silver of a job that failed in this
run (`failed_jobs`), directly or through another model, is SKIPPED and its table left as
it was; the others run. The report's `table` is gold/{w}/_workflow, each model carries
its status, table and version, what it depends on and its lineage: the silver version and
run (execution) of each job and the dimension versions it read, through the models it
reads too.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass, field

from flowforge import tables
from flowforge.errors import InvalidArgument
from flowforge.layout import JobKey
from flowforge.reports import DataObject, InputVersion, LayerReport, ModelOutput
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.specs.gold import GOLD_SCHEMA, SILVER_SCHEMA, WorkflowGold, WorkflowModel
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from services.gold.build import model_output
from services.gold.commit import (
    Staged,
    commit_build,
    commit_key,
    committed_report,
    discard,
    new_part,
    replay,
)
from services.gold.guard import check_model_sql
from services.gold.inputs import TableInput, resolve
from services.gold.sandbox import BuildJob, Sandbox

BUILT, SKIPPED = "BUILT", "SKIPPED"


@dataclass(frozen=True)
class WorkflowPlan:
    workflow_id: str
    run_id: str
    gold: WorkflowGold
    jobs: list[str]
    failed_jobs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i, job in enumerate(self.failed_jobs):
            if job not in self.jobs:
                raise InvalidArgument(
                    f"failed_jobs[{i}] {job!r} is not one of the workflow's jobs "
                    f"({', '.join(self.jobs)})"
                )


def skip_reasons(models: list[WorkflowModel], failed: list[str]) -> dict[str, str]:
    """Why each model that must not run is skipped (models come in dependency order)."""
    reasons: dict[str, str] = {}
    for model in models:
        jobs = [j for j in model.jobs if j in failed]
        upstream = [m for m in model.models if m in reasons]
        if jobs:
            reasons[model.name] = (
                f"reads {', '.join(f'{SILVER_SCHEMA}.{j}' for j in jobs)}, whose job failed "
                "in this run"
            )
        elif upstream:
            reasons[model.name] = (
                f"reads {GOLD_SCHEMA}.{upstream[0]}, which was skipped ({reasons[upstream[0]]})"
            )
    return reasons


def build_workflow(
    settings: Settings, store: ObjectStore, sandbox: Sandbox, plan: WorkflowPlan, deadline: Deadline
) -> LayerReport:
    started = time.monotonic()
    skipped = skip_reasons(plan.gold.models, plan.failed_jobs)
    models = [m for m in plan.gold.models if m.name not in skipped]
    refs = {m.name: TableRef.workflow_model(plan.workflow_id, m.name) for m in models}
    if models:
        previous = committed_report(settings, list(refs.values()), plan.run_id)
        if previous is not None:
            return replay(settings, previous, plan.gold.preview_rows)
    checked = [(m, check_model_sql(m.name, m.sql, readable(m))) for m in models]
    silver = {
        job: resolve(
            settings,
            TableRef.silver(JobKey.of(plan.workflow_id, job)),
            f"silver of job {plan.workflow_id}/{job}",
            job_id=job,
        )
        for job in dict.fromkeys(j for m in models for j in m.jobs)
    }
    dimensions = {
        name: resolve(settings, TableRef.dimension(name), f"dimension {name!r}", dimension=name)
        for name in dict.fromkeys(d for m in models for d in m.dimensions)
    }
    report = LayerReport(
        layer="gold",
        workflow_id=plan.workflow_id,
        job_id="",
        run_id=plan.run_id,
        table=f"gold/{plan.workflow_id}/_workflow",
        output_prefix=f"gold/{plan.workflow_id}/_workflow/",
        rows_in=sum(t.rows or 0 for t in silver.values()),
    )
    if not models:  # every model reads a failed job: nothing to build, nothing committed
        report.models = [skipped_output(m, skipped[m.name]) for m in plan.gold.models]
        report.seconds = time.monotonic() - started
        return report
    tables.require_conditional_writes(store)
    parts = {
        m.name: new_part(m.name, refs[m.name], commit_inputs(m, sql, silver, dimensions))
        for m, sql in checked
    }
    job = BuildJob(
        views={f"{SILVER_SCHEMA}.{job}": t.source() for job, t in silver.items()}
        | {f"dim_{name}": t.source() for name, t in dimensions.items()},
        models=[(m.name, sql, parts[m.name].key) for m, sql in checked],
        preview_rows=plan.gold.preview_rows,
        model_schema=GOLD_SCHEMA,
    )
    try:
        runs = {run.name: run for run in sandbox.run(job, deadline)}
        deadline.check("committing")  # a caller that gave up must not see a late commit
    except BaseException:
        # All or none: the workflow's tables were never touched; this build's files go.
        with contextlib.suppress(Exception):
            discard(store, [p.key for p in parts.values()])
        raise

    def finish(staged: list[Staged], versions: list[int]) -> LayerReport:
        version = dict(zip([s.name for s in staged], versions, strict=True))
        lineage: dict[str, list[InputVersion]] = {}
        outputs = []
        for model in plan.gold.models:
            if model.name in skipped:
                outputs.append(skipped_output(model, skipped[model.name]))
                continue
            lineage[model.name] = inputs_of(model, silver, dimensions, lineage, version, plan)
            output = model_output(runs[model.name], parts[model.name], version[model.name], [])
            output.status, output.depends_on = BUILT, model.models
            output.inputs = lineage[model.name]
            outputs.append(output)
        first = next(m for m in outputs if m.status == BUILT)
        built = [m for m in outputs if m.status == BUILT]
        return report.model_copy(
            update={
                "manifest_key": commit_key(TableRef(first.table), first.version),
                "data_objects": [
                    DataObject(key=m.key, size_bytes=m.size_bytes, rows=m.rows) for m in built
                ],
                "rows_out": sum(m.rows for m in built),
                "total_rows": sum(m.rows for m in built),
                "models": outputs,
                "warnings": [w for r in runs.values() for w in r.warnings]
                + [f"model {m.name!r} returned no rows" for m in built if m.rows == 0]
                + [f"model {m.name!r} skipped: {m.reason}" for m in outputs if m.status == SKIPPED],
                "seconds": time.monotonic() - started,
            }
        )

    ordered = [parts[m.name] for m, _ in checked]
    return commit_build(
        settings, store, plan.run_id, ordered, finish, deadline, plan.gold.preview_rows
    )


def readable(model: WorkflowModel) -> set[str]:
    """The views a model's SQL may name: exactly what its spec says it reads."""
    return (
        {f"{SILVER_SCHEMA}.{j}".lower() for j in model.jobs}
        | {f"{GOLD_SCHEMA}.{m}".lower() for m in model.models}
        | {f"dim_{d}".lower() for d in model.dimensions}
    )


def commit_inputs(
    model: WorkflowModel,
    sql: str,
    silver: dict[str, TableInput],
    dimensions: dict[str, TableInput],
) -> dict[str, object]:
    return {
        "silver": {job: silver[job].recorded() for job in model.jobs},
        "dimensions": {name: dimensions[name].recorded() for name in model.dimensions},
        "models": model.models,
        "sql": hashlib.sha256(sql.encode()).hexdigest(),
    }


def inputs_of(
    model: WorkflowModel,
    silver: dict[str, TableInput],
    dimensions: dict[str, TableInput],
    lineage: dict[str, list[InputVersion]],
    version: dict[str, int],
    plan: WorkflowPlan,
) -> list[InputVersion]:
    """What a model read: its silver and dimensions, and through each model it reads, that
    model's table at this build's version and everything that model read."""
    found = [silver[j].lineage() for j in model.jobs]
    found += [dimensions[d].lineage() for d in model.dimensions]
    for upstream in model.models:
        table = TableRef.workflow_model(plan.workflow_id, upstream).path
        found.append(InputVersion(table=table, version=version[upstream], run_id=plan.run_id))
        found += lineage[upstream]
    unique: dict[tuple[str, int], InputVersion] = {}
    for item in found:
        unique.setdefault((item.table, item.version), item)
    return list(unique.values())


def skipped_output(model: WorkflowModel, reason: str) -> ModelOutput:
    # No table: the model's table keeps the version it had, which this run did not write.
    return ModelOutput(
        name=model.name, key="", rows=0, size_bytes=0, status=SKIPPED, reason=reason,
        depends_on=model.models,
    )  # fmt: skip
