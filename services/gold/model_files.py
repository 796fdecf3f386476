"""A model's Parquet file as a Delta add action: its schema, rows and column statistics.

All of it is read from the file's own footer (two ranged GETs), not taken from what the
build's process reported: that process ran untrusted SQL. The statistics follow delta-rs's
own (numRecords, nullCount; minValues/maxValues where a reader's data skipping can rely on
them): integers, booleans, dates, decimals, timestamps (to the millisecond, as delta-rs
writes them) and text up to 32 characters (DuckDB cuts longer text statistics, so a cut
maximum would be wrong). Floats (NaN) and nested columns get counts only.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake.transaction import AddAction

from flowforge.errors import FailedPrecondition
from flowforge.storage import ObjectStore

# Most footers fit in one GET of the file's last 64 KiB.
FOOTER_PROBE = 64 << 10
MAX_TEXT_STATISTIC = 32
_MAGIC = b"PAR1"


@dataclass(frozen=True)
class ModelFile:
    """One part file a model wrote: where, how big, and what its footer says."""

    key: str
    size: int
    schema: pa.Schema
    rows: int
    stats: dict[str, Any]

    def add_action(self, table_prefix: str) -> AddAction:
        return AddAction(
            path=self.key.removeprefix(table_prefix),
            size=self.size,
            partition_values={},
            modification_time=int(time.time() * 1000),
            data_change=True,
            stats=json.dumps(self.stats, separators=(",", ":")),
        )


def read_model_file(store: ObjectStore, key: str) -> ModelFile:
    info = store.head(key)
    if info is None:
        raise FailedPrecondition(f"the model file s3://{store.bucket}/{key} was not written")
    size = info.size
    tail = store.get_bytes(key, (max(0, size - FOOTER_PROBE), size - 1)) if size else b""
    if len(tail) < 12 or tail[-4:] != _MAGIC:
        raise FailedPrecondition(f"s3://{store.bucket}/{key} is not a Parquet file")
    length = struct.unpack("<I", tail[-8:-4])[0]
    if length + 12 > size:
        raise FailedPrecondition(f"s3://{store.bucket}/{key} has a broken Parquet footer")
    if length + 8 > len(tail):
        tail = store.get_bytes(key, (size - length - 8, size - 1))
    # The footer alone, behind a magic number: what pyarrow needs to read the metadata.
    meta = pq.read_metadata(pa.BufferReader(_MAGIC + tail[-(length + 8) :]))
    return ModelFile(
        key=key,
        size=size,
        schema=meta.schema.to_arrow_schema(),
        rows=meta.num_rows,
        stats=delta_stats(meta),
    )


def delta_stats(meta: pq.FileMetaData) -> dict[str, Any]:
    """Delta's per-file statistics for the top-level columns of a Parquet footer."""
    schema = meta.schema.to_arrow_schema()
    stats: dict[str, Any] = {"numRecords": meta.num_rows}
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for field in schema:
        column = _leaf(meta, field.name)
        if column is None:
            continue  # nested: Delta's nested statistics are left out
        lows, highs, count = [], [], 0
        bounded = True
        for group in range(meta.num_row_groups):
            chunk = meta.row_group(group).column(column)
            statistics = chunk.statistics
            if statistics is None or not statistics.has_null_count:
                bounded, count = False, -1
                break
            count += statistics.null_count
            if statistics.has_min_max:
                lows.append(statistics.min)
                highs.append(statistics.max)
            elif statistics.null_count < meta.row_group(group).num_rows:
                bounded = False  # values without a range
        if count < 0:
            continue
        nulls[field.name] = count
        if bounded and lows:
            low, high = _json(field.type, min(lows)), _json(field.type, max(highs))
            if low is not None and high is not None:
                minimum[field.name], maximum[field.name] = low, high
    if minimum:
        stats["minValues"] = minimum
        stats["maxValues"] = maximum
    stats["nullCount"] = nulls
    return stats


def _leaf(meta: pq.FileMetaData, name: str) -> int | None:
    """The index of the column chunk of a top-level, non-nested column."""
    for index in range(meta.num_columns):
        if meta.schema.column(index).path == name:
            return index
    return None


def _json(type_: pa.DataType, value: Any) -> Any:
    """A statistic as delta-rs writes it, or None when it is not kept."""
    if pa.types.is_boolean(type_) or pa.types.is_integer(type_):
        return value if isinstance(value, bool | int) else None
    if pa.types.is_date(type_) and isinstance(value, date):
        return value.isoformat()
    if pa.types.is_decimal(type_) and isinstance(value, Decimal):
        return float(value)
    if pa.types.is_timestamp(type_) and isinstance(value, datetime):
        milliseconds = value.replace(microsecond=value.microsecond // 1000 * 1000)
        if type_.tz is None:
            return milliseconds.isoformat(sep=" ", timespec="milliseconds")
        return milliseconds.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    text = pa.types.is_string(type_) or pa.types.is_large_string(type_)
    if text and isinstance(value, str) and len(value) <= MAX_TEXT_STATISTIC:
        return value
    return None
