"""Previews of committed output: the first rows of each gold model and of a step's
quarantine (silver), read from the committed manifest, or rejects (bronze), read from the
rejects table's current version; never a listing."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import polars as pl
import pyarrow as pa
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from flowforge import tables
from flowforge.errors import NotFound, Unavailable
from flowforge.layout import Dataset, JobKey
from flowforge.manifest import ManifestObject, read_committed
from flowforge.settings import Settings
from flowforge.storage import polars_storage_options, s3_url
from flowforge.tables import TableRef
from orchestrator.api.context import Context, ExecutionId
from orchestrator.api.executions import read_execution
from orchestrator.api.schemas import Preview, Previews

router = APIRouter(tags=["outputs"])
MAX_ROWS = 100
Rows = Annotated[int, Query(ge=1, le=MAX_ROWS, description=f"Rows per preview (<= {MAX_ROWS})")]


@router.get("/api/executions/{execution_id}/gold", response_model=Previews)
async def gold_previews(ctx: Context, execution_id: ExecutionId, limit: Rows = 20) -> Previews:
    """The first rows of each model of the job's committed gold output."""
    return await run_in_threadpool(_previews, ctx, execution_id, "gold", limit)


@router.get("/api/executions/{execution_id}/quarantine", response_model=Previews)
async def quarantine_preview(
    ctx: Context,
    execution_id: ExecutionId,
    layer: Literal["silver", "bronze"] = "silver",
    limit: Rows = 20,
) -> Previews:
    """The first rows set aside by a step: silver's quarantine, or bronze's rejects."""
    return await run_in_threadpool(_previews, ctx, execution_id, layer, limit)


def _previews(ctx: Context, execution_id: str, layer: str, limit: int) -> Previews:
    execution = read_execution(ctx, execution_id)
    job = JobKey.of(execution.workflow_id, execution.job_id)
    if layer == "bronze":
        return _rejects_preview(ctx, execution.id, job, limit)
    committed = read_committed(ctx.objects, Dataset.for_layer(layer, job))
    if committed is None:
        raise NotFound(f"job {job} has no committed {layer} output")
    manifest = committed.manifest
    if layer == "gold":
        items = [
            _preview(ctx.settings, o.key.rsplit("/", 1)[-1].removesuffix(".parquet"), [o], limit)
            for o in manifest.data_objects
        ]
    else:
        items = [_preview(ctx.settings, "quarantine", manifest.reject_objects, limit)]
    return Previews(
        execution_id=execution.id,
        layer=layer,
        run_id=manifest.run_id,
        current=manifest.run_id == execution.id,
        items=items,
    )


def _rejects_preview(ctx: Context, execution_id: str, job: JobKey, limit: int) -> Previews:
    settings, ref = ctx.settings, TableRef.bronze_rejects(job)
    with tables.delta_errors("reading bronze's rejects", ref):
        table = tables.load(settings, ref)
        if table is None:
            raise NotFound(f"job {job} has no committed bronze output")
        latest = tables.commit_at(ctx.objects, ref, table.version())
        files = pa.table(table.get_add_actions(flatten=True))
    try:
        frame = tables.scan(settings, table).head(limit).collect()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise Unavailable(f"could not read {ref.uri(settings)}: {exc}") from None
    preview = Preview(
        name="rejects",
        key=str(ref),
        rows=sum(files.column("num_records").to_pylist()) if files.num_rows else 0,
        columns=frame.columns,
        preview=json_rows(frame),
    )
    return Previews(
        execution_id=execution_id,
        layer="bronze",
        run_id=latest.run_id,
        current=latest.run_id == execution_id,
        items=[preview],
    )


def _preview(settings: Settings, name: str, objects: list[ManifestObject], limit: int) -> Preview:
    frames: list[pl.DataFrame] = []
    wanted = limit
    for obj in objects:
        if wanted <= 0:
            break
        if obj.rows == 0:
            continue
        frame = _head(settings, obj.key, wanted)
        frames.append(frame)
        wanted -= frame.height
    frame = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    return Preview(
        name=name,
        key=objects[0].key if objects else "",
        rows=sum(o.rows for o in objects),
        columns=frame.columns,
        preview=json_rows(frame),
    )


def _head(settings: Settings, key: str, rows: int) -> pl.DataFrame:
    try:
        return (
            pl.scan_parquet(s3_url(settings, key), storage_options=polars_storage_options(settings))
            .head(rows)
            .collect()
        )
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise Unavailable(f"could not read {s3_url(settings, key)}: {exc}") from None


def json_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON values: decimals, dates and times as text, binary as hex."""
    columns = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if dtype == pl.Binary:
            column = column.bin.encode("hex")
        elif dtype.is_decimal() or dtype.is_temporal() or dtype == pl.Object:
            column = column.cast(pl.String)
        columns.append(column)
    return frame.select(columns).to_dicts() if columns else []
