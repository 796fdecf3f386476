"""Dimension tables: reference data (countries, currencies, ...) that gold models read.

A dimension is a CSV or Parquet file stored as one Parquet object under
`dimensions/{name}/run={run_id}/` and committed through the manifest protocol, so a
gold build reads either the previous version or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from flowforge import casting
from flowforge.errors import InvalidArgument
from flowforge.ids import new_run_id
from flowforge.layout import Dataset
from flowforge.manifest import Manifest, ManifestColumn, commit, read_committed, start_run
from flowforge.parts import write_parquet
from flowforge.specs.silver_model import ColumnRule
from flowforge.storage import ObjectStore

PREFIX = "dimensions/"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class DimensionInfo:
    name: str
    run_id: str
    rows: int
    columns: list[tuple[str, str]]
    created_at: datetime
    source: str
    warnings: list[str] = field(default_factory=list)  # from an upload: columns kept as text


def upload_dimension(
    store: ObjectStore, name: str, data: bytes | Path, filename: str
) -> DimensionInfo:
    """Stores `data` (a CSV or Parquet file's bytes or path, told apart by filename) as
    dimension `name`."""
    dataset = Dataset.for_dimension(name)
    frame, warnings = read_table(data, filename)
    previous = read_committed(store, dataset)
    run_id = new_run_id()
    prefix = start_run(store, dataset, run_id, previous)
    part = write_parquet(store, f"{prefix}{name}.parquet", frame, source_key=filename)
    manifest = Manifest(
        dataset=dataset.prefix,
        run_id=run_id,
        data_objects=[part],
        columns=[ManifestColumn(name=c, type=str(t)) for c, t in frame.schema.items()],
        inputs={
            "file": filename,
            "format": FORMATS[Path(filename).suffix.lower()],
            **fingerprint(data),
        },
    )
    commit(store, dataset, manifest, previous)
    uploaded = info(name, manifest)
    uploaded.warnings.extend(warnings)
    return uploaded


def upload_dimension_file(store: ObjectStore, name: str, path: Path) -> DimensionInfo:
    return upload_dimension(store, name, path, path.name)


def fingerprint(data: bytes | Path) -> dict[str, object]:
    if isinstance(data, Path):
        with data.open("rb") as handle:
            return {
                "size_bytes": data.stat().st_size,
                "sha256": hashlib.file_digest(handle, "sha256").hexdigest(),
            }
    return {"size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def list_dimensions(store: ObjectStore) -> list[DimensionInfo]:
    """Every committed dimension, by name."""
    found = []
    for prefix in store.list_prefixes(PREFIX):
        name = prefix[len(PREFIX) :].rstrip("/")
        try:
            dataset = Dataset.for_dimension(name)
        except InvalidArgument:
            continue  # not written by FlowForge
        committed = read_committed(store, dataset)
        if committed is not None:
            found.append(info(name, committed.manifest))
    return sorted(found, key=lambda d: d.name)


def info(name: str, manifest: Manifest) -> DimensionInfo:
    return DimensionInfo(
        name=name,
        run_id=manifest.run_id,
        rows=manifest.total_rows,
        columns=[(c.name, c.type) for c in manifest.columns],
        created_at=manifest.created_at,
        source=str(manifest.inputs.get("file", "")),
    )


def read_table(data: bytes | Path, filename: str) -> tuple[pl.DataFrame, list[str]]:
    """The file's rows, CSV columns typed by inference over every value; and why a CSV
    column that looked numeric stayed text."""
    kind = FORMATS.get(Path(filename).suffix.lower())
    if kind is None:
        raise InvalidArgument(
            f"dimension file {filename!r} must end with .csv or .parquet "
            f"(got {Path(filename).suffix!r})"
        )
    warnings: list[str] = []
    try:
        if kind == "parquet":
            frame = pl.read_parquet(data)
        else:
            frame, warnings = read_csv_typed(data)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise InvalidArgument(
            f"dimension file {filename!r} is not readable {kind}: {exc}"
        ) from None
    if not frame.columns:
        raise InvalidArgument(f"dimension file {filename!r} has no columns")
    return frame, warnings


def read_csv_typed(data: bytes | Path) -> tuple[pl.DataFrame, list[str]]:
    """Types each column as silver would without a spec (casting.infer_types: a code such
    as '007' or '+44' stays text), but keeps every value as written: no trimming, and
    only an empty field is null."""
    text = pl.read_csv(data, infer_schema=False)
    columns = [ColumnRule(c, c, None, trim=False, null_markers=("",)) for c in text.columns]
    found = casting.infer_types(text.lazy(), columns)
    cleaned = text.lazy().select(
        casting.clean_text(pl.col(c.source), c).alias(f"__text{i}") for i, c in enumerate(columns)
    )
    steps = [(f"__text{i}", f"__typed{i}", casting.parsers(f.type)) for i, f in enumerate(found)]
    typed = casting.parse_in_order(cleaned, steps).select(
        pl.col(f"__typed{i}").alias(c.source) for i, c in enumerate(columns)
    )
    warnings = [f.warning for f in found if f.warning]
    return typed.collect(), warnings
