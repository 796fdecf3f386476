"""Previews of output committed by a manifest (flowforge/manifest.py), for layers that do
not write Delta tables yet; this module goes with flowforge/manifest.py (issue 19)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from flowforge.errors import Unavailable
from flowforge.layout import Dataset, JobKey
from flowforge.manifest import ManifestObject, read_committed
from flowforge.settings import Settings
from flowforge.storage import ObjectStore, polars_storage_options, s3_url
from orchestrator.api.schemas import Preview, Previews

JsonRows = Callable[[pl.DataFrame], list[dict[str, Any]]]


def manifest_previews(
    settings: Settings,
    objects: ObjectStore,
    execution_id: str,
    job: JobKey,
    layer: str,
    limit: int,
    json_rows: JsonRows,
) -> Previews | None:
    """The committed manifest's objects, or None when the layer has no manifest."""
    committed = read_committed(objects, Dataset.for_layer(layer, job))
    if committed is None:
        return None
    manifest = committed.manifest
    if layer == "gold":
        items = [
            _preview(settings, o.key.rsplit("/", 1)[-1].removesuffix(".parquet"), [o], limit)
            for o in manifest.data_objects
        ]
    else:
        name = "quarantine" if layer == "silver" else "rejects"
        items = [_preview(settings, name, manifest.reject_objects, limit)]
    current = manifest.run_id == execution_id
    for item, frame in items:
        item.preview = json_rows(frame)
        item.current = current
    return Previews(
        execution_id=execution_id,
        layer=layer,
        run_id=manifest.run_id,
        current=current,
        items=[item for item, _ in items],
    )


def _preview(
    settings: Settings, name: str, objects: list[ManifestObject], limit: int
) -> tuple[Preview, pl.DataFrame]:
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
    preview = Preview(
        name=name,
        key=objects[0].key if objects else "",
        table=None,
        version=None,
        current=False,
        rows=sum(o.rows for o in objects),
        columns=frame.columns,
        preview=[],
    )
    return preview, frame


def _head(settings: Settings, key: str, rows: int) -> pl.DataFrame:
    try:
        return (
            pl.scan_parquet(s3_url(settings, key), storage_options=polars_storage_options(settings))
            .head(rows)
            .collect()
        )
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise Unavailable(f"could not read {s3_url(settings, key)}: {exc}") from None
