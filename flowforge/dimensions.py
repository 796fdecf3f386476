"""Dimension tables: reference data (countries, currencies, ...) that gold models read.

A dimension is a CSV or Parquet file stored as one Parquet object under
`dimensions/{name}/run={run_id}/` and committed through the manifest protocol, so a
gold build reads either the previous version or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from flowforge.errors import InvalidArgument
from flowforge.ids import new_run_id
from flowforge.layout import Dataset
from flowforge.manifest import Manifest, ManifestColumn, commit, read_committed, start_run
from flowforge.parts import write_parquet
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


def upload_dimension(
    store: ObjectStore, name: str, data: bytes | Path, filename: str
) -> DimensionInfo:
    """Stores `data` (a CSV or Parquet file's bytes or path, told apart by filename) as
    dimension `name`."""
    dataset = Dataset.for_dimension(name)
    frame = read_table(data, filename)
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
    return info(name, manifest)


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


def read_table(data: bytes | Path, filename: str) -> pl.DataFrame:
    """The file's rows; CSV columns typed by inference over every value."""
    kind = FORMATS.get(Path(filename).suffix.lower())
    if kind is None:
        raise InvalidArgument(
            f"dimension file {filename!r} must end with .csv or .parquet "
            f"(got {Path(filename).suffix!r})"
        )
    try:
        frame = pl.read_parquet(data) if kind == "parquet" else read_csv_typed(data)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise InvalidArgument(
            f"dimension file {filename!r} is not readable {kind}: {exc}"
        ) from None
    if not frame.columns:
        raise InvalidArgument(f"dimension file {filename!r} has no columns")
    return frame


def read_csv_typed(data: bytes | Path) -> pl.DataFrame:
    """Infers types from all values, but keeps codes such as '007' or '+44' as text."""
    text = pl.read_csv(data, infer_schema=False)
    typed = pl.read_csv(data, infer_schema_length=None, try_parse_dates=True)
    keep_text = [
        name
        for name in typed.columns
        if typed[name].dtype.is_integer()
        and not (typed[name].cast(pl.String) == text[name]).fill_null(True).all()
    ]
    return typed.with_columns(text[name] for name in keep_text)
