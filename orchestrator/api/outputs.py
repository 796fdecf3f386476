"""Previews of an execution's output: the first rows of each gold model and of a step's
quarantine (silver) or rejects (bronze), each read at the table version that execution
committed (Delta time travel), never at whatever the table holds now; each says which
table and version it is and whether that version still holds the table's current rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from flowforge import catalog, tables
from flowforge.catalog import json_rows
from flowforge.errors import NotFound
from flowforge.layout import JobKey
from flowforge.tables import TableRef
from orchestrator.api.context import ApiContext, Context, ExecutionId
from orchestrator.api.executions import read_execution
from orchestrator.api.legacy_previews import manifest_previews
from orchestrator.api.schemas import Preview, Previews
from orchestrator.store import ExecutionRecord, TableRole

__all__ = ["json_rows", "router"]
router = APIRouter(tags=["outputs"])
MAX_ROWS = 100
Rows = Annotated[int, Query(ge=1, le=MAX_ROWS, description=f"Rows per preview (<= {MAX_ROWS})")]
SIDE_NAMES = {"silver": "quarantine", "bronze": "rejects"}


@router.get("/api/executions/{execution_id}/gold", response_model=Previews)
async def gold_previews(ctx: Context, execution_id: ExecutionId, limit: Rows = 20) -> Previews:
    """The first rows of each model table at the version this execution committed."""
    return await run_in_threadpool(_previews, ctx, execution_id, "gold", limit)


@router.get("/api/executions/{execution_id}/quarantine", response_model=Previews)
async def quarantine_preview(
    ctx: Context,
    execution_id: ExecutionId,
    layer: Literal["silver", "bronze"] = "silver",
    limit: Rows = 20,
) -> Previews:
    """The first rows set aside by a step, at the version it committed: silver's
    quarantine table, or bronze's rejects table."""
    return await run_in_threadpool(_previews, ctx, execution_id, layer, limit)


@dataclass(frozen=True)
class Target:
    """A table to preview, at the version the execution recorded (None: look it up)."""

    name: str
    ref: TableRef
    version: int | None


def _previews(ctx: ApiContext, execution_id: str, layer: str, limit: int) -> Previews:
    execution = read_execution(ctx, execution_id)
    job = JobKey.of(execution.workflow_id, execution.job_id)
    targets = recorded(execution, layer) or existing(ctx, job, layer)
    if not targets:
        legacy = manifest_previews(
            ctx.settings, ctx.objects, execution.id, job, layer, limit, json_rows
        )
        if legacy is None:
            raise NotFound(f"job {job} has no committed {layer} output")
        return legacy
    shown = [preview(ctx, target, execution.id, limit) for target in targets]
    return Previews(
        execution_id=execution.id,
        layer=layer,
        run_id=shown[0].run_id or None,
        current=all(s.own and s.item.current for s in shown),
        items=[s.item for s in shown],
    )


def recorded(execution: ExecutionRecord, layer: str) -> list[Target]:
    """The versions the execution's step recorded committing."""
    step = next((s for s in execution.steps if s.layer == layer), None)
    role = TableRole.MODEL if layer == "gold" else TableRole.SIDE
    return [
        Target(t.model or SIDE_NAMES.get(layer, t.table), TableRef(t.table), t.version)
        for t in (step.tables if step else [])
        if t.role == role
    ]


def existing(ctx: ApiContext, job: JobKey, layer: str) -> list[Target]:
    """The job's tables when the step recorded none (it ran before versions were kept)."""
    if layer == "gold":
        refs = catalog.gold_tables(ctx.objects, job.workflow_id, job.job_id)
        return [Target(r.path.rsplit("/", 1)[-1], r, None) for r in refs]
    ref = TableRef.silver_quarantine(job) if layer == "silver" else TableRef.bronze_rejects(job)
    return [Target(SIDE_NAMES[layer], ref, None)] if tables.load(ctx.settings, ref) else []


@dataclass(frozen=True)
class Shown:
    item: Preview
    run_id: str  # the run that committed the version shown
    own: bool  # the execution's own version (False: its version is unknown, the latest shown)


def preview(ctx: ApiContext, target: Target, execution_id: str, limit: int) -> Shown:
    """The target at the execution's version: the one it recorded, else the one its run id
    committed, else (it committed none) the latest."""
    version = target.version
    if version is None:
        commit = tables.find_commit(tables.load(ctx.settings, target.ref), execution_id)
        version = commit.version if commit else None
    own = version is not None
    view = catalog.read_version(ctx.settings, target.ref, version, limit)
    item = Preview(
        name=target.name,
        key=target.ref.path,
        table=target.ref.path,
        version=view.version,
        current=view.current,
        latest_version=view.latest_version,
        rows=view.files.rows,
        columns=view.head.columns,
        preview=json_rows(view.head),
    )
    return Shown(item, view.commit.run_id if view.commit else "", own)
