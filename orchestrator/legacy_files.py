"""How a legacy dataset's Parquet objects become a Delta table's files (for `flowforge
migrate`): placed inside the table's folder, in types Delta has a reader type for."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl
from deltalake import Schema
from deltalake.transaction import AddAction

from flowforge.errors import FailedPrecondition
from flowforge.settings import Settings
from flowforge.storage import ObjectStore, polars_storage_options, s3_url
from flowforge.tables import TableRef
from orchestrator.legacy import LegacyObject

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

ROW_HASH = "_row_hash"
# Delta has no unsigned integers: each is widened to a signed type holding all its values.
WIDER: dict[Any, pl.DataType] = {
    pl.UInt8: pl.Int16(),
    pl.UInt16: pl.Int32(),
    pl.UInt32: pl.Int64(),
    pl.UInt64: pl.Decimal(20, 0),
    pl.Int128: pl.Decimal(38, 0),
    pl.UInt128: pl.Decimal(38, 0),
}


@dataclass(frozen=True)
class Placed:
    """An object the table adds: where it is now (relative to the table) and its rows."""

    key: str
    rows: int
    source_key: str
    source_etag: str
    schema: pl.Schema
    how: str  # kept (where it was), rewritten (for its types) or copied (into the folder)


def place(settings: Settings, objects: ObjectStore, ref: TableRef, obj: LegacyObject) -> Placed:
    """The object inside the table's folder, in types Delta holds: left where it is,
    rewritten in place, copied, or rewritten into the table's folder."""
    target = obj.key if obj.key.startswith(ref.prefix) else inside(ref, obj.key)
    source = target if objects.head(target) is not None else obj.key  # copied by a past run
    schema = pl.scan_parquet(
        s3_url(settings, source), storage_options=polars_storage_options(settings)
    ).collect_schema()
    casts = storable_casts(schema)
    how = "kept"
    if casts:
        rewrite(settings, objects, source, target, casts)
        how = "rewritten"
    elif source != target:
        objects.copy(source, target)
        how = "copied"
    typed = pl.Schema({name: casts[name][1] if name in casts else t for name, t in schema.items()})
    return Placed(target, obj.rows, obj.source_key, obj.source_etag, typed, how)


def inside(ref: TableRef, key: str) -> str:
    """Where an object from outside a table goes in its folder: `run={id}/{file name}`."""
    run = next((part for part in key.split("/") if part.startswith("run=")), "run=migrated")
    return f"{ref.prefix}{run}/{key.rsplit('/', 1)[-1]}"


def storable_casts(schema: pl.Schema) -> dict[str, tuple[pl.Expr, pl.DataType]]:
    """The columns whose type Delta cannot hold, with how each becomes one it can."""
    casts: dict[str, tuple[pl.Expr, pl.DataType]] = {}
    for name, dtype in schema.items():
        if name == ROW_HASH and dtype == pl.UInt64:
            casts[name] = (pl.col(name).reinterpret(signed=True), pl.Int64())
            continue
        wanted = storable(dtype)
        if wanted != dtype:
            casts[name] = (pl.col(name).cast(wanted), wanted)
    return casts


def storable(dtype: PolarsDataType) -> pl.DataType:
    """The nearest type Delta holds with every value (nested types member by member)."""
    base = dtype.base_type()
    if base in WIDER:
        return WIDER[base]
    if base in (pl.Null, pl.Time, pl.Duration, pl.Categorical, pl.Enum):
        return pl.String()
    if not isinstance(dtype, pl.DataType):  # a bare class: no parameters to carry
        return dtype()
    if isinstance(dtype, pl.Datetime) and dtype.time_unit != "us":
        return pl.Datetime("us", dtype.time_zone)
    if isinstance(dtype, pl.List | pl.Array):
        return pl.List(storable(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pl.Struct([pl.Field(f.name, storable(f.dtype)) for f in dtype.fields])
    return dtype


def rewrite(
    settings: Settings,
    objects: ObjectStore,
    source: str,
    target: str,
    casts: dict[str, tuple[pl.Expr, pl.DataType]],
) -> None:
    """Streams `source` through the casts into `target` (the same key: replaced whole by
    the upload, so a crash leaves either file, never half of one)."""
    frame = pl.scan_parquet(
        s3_url(settings, source), storage_options=polars_storage_options(settings)
    )
    with tempfile.NamedTemporaryFile(prefix="flowforge-migrate-", suffix=".parquet") as spool:
        frame.with_columns(expr for expr, _ in casts.values()).sink_parquet(
            spool.name, compression="zstd", statistics=True
        )
        with open(spool.name, "rb") as stream:
            objects.upload(target, stream)


def table_schema(ref: TableRef, placed: list[Placed]) -> Schema:
    """Every file's columns, in order of first appearance (a later file may add some)."""
    merged: dict[str, pl.DataType] = {}
    for file in placed:
        for name, dtype in file.schema.items():
            if merged.setdefault(name, dtype) != dtype:
                raise FailedPrecondition(
                    f"table {ref}: column {name!r} is {merged[name]} in one file and {dtype} "
                    f"in {file.key}"
                )
    return Schema.from_arrow(pl.DataFrame(schema=merged).to_arrow().schema)


def add_action(objects: ObjectStore, ref: TableRef, placed: Placed) -> AddAction:
    info = objects.head(placed.key)
    if info is None:
        raise FailedPrecondition(f"s3://{objects.bucket}/{placed.key} is missing")
    stats: dict[str, Any] = {"numRecords": placed.rows}
    # A bronze part holds one landing file's rows: the stats say which, so bronze can tell
    # the files it already holds from the table's log alone.
    sources = {"_source_key": placed.source_key, "_source_etag": placed.source_etag}
    known = {k: v for k, v in sources.items() if v and k in placed.schema}
    if known:
        stats |= {"minValues": known, "maxValues": known, "nullCount": dict.fromkeys(known, 0)}
    modified = info.last_modified or datetime.now(UTC)
    return AddAction(
        placed.key[len(ref.prefix) :],
        info.size,
        {},
        int(modified.timestamp() * 1000),
        True,
        json.dumps(stats),
    )
