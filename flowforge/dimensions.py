"""Dimension tables: reference data (countries, currencies, ...) that gold models read.

A dimension is a CSV or Parquet file stored as the Delta table `dimensions/{name}`; each
upload overwrites it in one commit, so a gold build reads one version or the next, never
half of one (and an older version stays readable by its number).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from flowforge import casting, tables
from flowforge.errors import FailedPrecondition, InvalidArgument, NotFound
from flowforge.ids import new_run_id
from flowforge.specs.silver_model import ColumnRule
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef

PREFIX = "dimensions/"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class DimensionInfo:
    name: str
    run_id: str
    version: int
    rows: int
    columns: list[tuple[str, str]]
    created_at: datetime
    source: str
    warnings: list[str] = field(default_factory=list)  # from an upload: columns kept as text


def upload_dimension(
    store: ObjectStore, name: str, data: bytes | Path, filename: str
) -> DimensionInfo:
    """Stores `data` (a CSV or Parquet file's bytes or path, told apart by filename) as
    dimension `name`, replacing its rows in one commit."""
    ref = TableRef.dimension(name)
    frame, warnings = read_table(data, filename)
    frame = storable(frame, filename)
    tables.require_conditional_writes(store)
    settings, run_id = store.settings, new_run_id()
    inputs = {"file": filename, "format": FORMATS[Path(filename).suffix.lower()]}
    properties = tables.commit_properties(run_id, inputs=inputs | fingerprint(data))
    with tables.delta_errors(f"writing dimension {name!r}", ref):
        write_deltalake(
            ref.uri(settings),
            frame.rechunk().to_arrow(),  # one batch: delta-rs mixes the order of several
            mode="overwrite",
            schema_mode="overwrite",
            storage_options=tables.storage_options(settings),
            commit_properties=properties,
        )
    with tables.delta_errors(f"reading dimension {name!r}", ref):
        commit = tables.find_commit(tables.load(settings, ref), run_id, settings)
        if commit is None:  # pragma: no cover (the write above committed it)
            raise FailedPrecondition(f"dimension {name!r}: the upload's commit is not in {ref}")
        table = tables.require(settings, ref, f"dimension {name!r}", commit.version)
        uploaded = info(store, name, table)
    uploaded.warnings.extend(warnings)
    return uploaded


def delete_dimension(store: ObjectStore, name: str) -> int:
    """Deletes dimension `name`'s table (every version); NotFound when there is none.
    Returns how many objects it had. Whether a workflow still reads it is the caller's
    check (orchestrator.workflows.workflows_reading)."""
    ref = TableRef.dimension(name)
    if next(store.list(f"{ref.prefix}_delta_log/"), None) is None:
        raise NotFound(f"there is no dimension {name!r}")
    return store.delete_prefix(ref.prefix)


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
    """Every dimension table (a folder under dimensions/ holding a _delta_log/), by name."""
    found = []
    for prefix in store.list_prefixes(PREFIX):
        name = prefix[len(PREFIX) :].rstrip("/")
        try:
            ref = TableRef.dimension(name)
        except InvalidArgument:
            continue  # not written by FlowForge
        if f"{prefix}_delta_log/" not in store.list_prefixes(prefix):
            continue
        with tables.delta_errors(f"reading dimension {name!r}", ref):
            table = tables.load(store.settings, ref)
            if table is not None:
                found.append(info(store, name, table))
    return sorted(found, key=lambda d: d.name)


def info(store: ObjectStore, name: str, table: DeltaTable) -> DimensionInfo:
    """What the loaded version of a dimension table holds."""
    commit = tables.commit_at(store, TableRef.dimension(name), table.version())
    actions = pa.table(table.get_add_actions(flatten=True))
    schema = pl.DataFrame(pa.schema(table.schema().to_arrow()).empty_table()).schema
    return DimensionInfo(
        name=name,
        run_id=commit.run_id,
        version=table.version(),
        rows=sum(actions.column("num_records").to_pylist()) if actions.num_rows else 0,
        columns=[(column, str(dtype)) for column, dtype in schema.items()],
        created_at=commit.timestamp,
        source=str(commit.inputs.get("file", "")),
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


def storable(frame: pl.DataFrame, filename: str) -> pl.DataFrame:
    """The frame in types a Delta table holds: Delta has no unsigned integers (delta-rs
    would narrow UInt8 to Int8) and no column of nulls alone. A table with no rows has no
    data file for a gold view to read, so it is refused."""
    if frame.height == 0:
        raise InvalidArgument(f"dimension file {filename!r} has no rows")
    wider: dict[pl.DataType, pl.DataType] = {
        pl.UInt8(): pl.Int16(),
        pl.UInt16(): pl.Int32(),
        pl.UInt32(): pl.Int64(),
        pl.UInt64(): pl.Decimal(20, 0),
        pl.Null(): pl.String(),
    }
    casts: dict[Any, pl.DataType] = {c: wider[t] for c, t in frame.schema.items() if t in wider}
    return frame.cast(casts) if casts else frame


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
