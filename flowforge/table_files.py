"""Parquet files a layer writes itself into a table's folder, and the actions committing them.

A file is named `part-{uuid}.parquet`, so two attempts never share one, and an attempt that
does not commit deletes exactly the files it wrote. Its add action carries statistics: the
row count, and the exact min/max of the columns named (strings and integers only, so that
a reader skipping files by them is never wrong).
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl
from deltalake import Schema
from deltalake.transaction import AddAction, RemoveAction

from flowforge.storage import ObjectStore
from flowforge.tables import TableRef


@dataclass(frozen=True)
class DataFile:
    """One data file written into a table's folder, not necessarily committed."""

    key: str  # the object's key in the bucket
    size_bytes: int
    rows: int
    stats: str  # the add action's statistics, JSON
    source_key: str = ""
    source_etag: str = ""


def write_part(
    store: ObjectStore,
    table: TableRef,
    frame: pl.DataFrame,
    stats_columns: Iterable[str] = (),
    source_key: str = "",
    source_etag: str = "",
) -> DataFile:
    """Writes one frame as one zstd Parquet file in the table's folder."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    size = buffer.tell()
    buffer.seek(0)
    key = f"{table.prefix}part-{uuid.uuid4()}.parquet"
    store.put_bytes(key, buffer)
    stats = file_stats(frame, stats_columns)
    return DataFile(key, size, frame.height, stats, source_key, source_etag)


def file_stats(frame: pl.DataFrame, columns: Iterable[str]) -> str:
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for name in columns:
        column = frame.get_column(name)
        nulls[name] = column.null_count()
        exact = column.dtype == pl.String or column.dtype.is_integer()
        if exact and nulls[name] < frame.height:
            minimum[name], maximum[name] = column.min(), column.max()
    return json.dumps(
        {"numRecords": frame.height, "minValues": minimum, "maxValues": maximum, "nullCount": nulls}
    )


def add_action(table: TableRef, file: DataFile) -> AddAction:
    path = file.key.removeprefix(table.prefix)
    return AddAction(path, file.size_bytes, {}, now_ms(), True, file.stats)


def remove_action(path: str, size_bytes: int) -> RemoveAction:
    return RemoveAction(path, True, now_ms(), size_bytes)


def delta_schema(schema: dict[str, pl.DataType]) -> Schema:
    """A polars schema as a Delta schema (text as `string`, Int64 as `long`, ...)."""
    return Schema.from_arrow(pl.DataFrame(schema=schema).to_arrow().schema)


def now_ms() -> int:
    return int(time.time() * 1000)
