"""Parquet files written into a table's folder before the commit that adds them, and that
commit (delta-rs: the table's first version with them, or an append or overwrite).

A refine that fails before it tries to commit deletes exactly its own staged files (never
a prefix); once a commit was tried its files stay, as the commit may have landed (a lost
answer) and a losing run's files are vacuum's.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Schema, TableFeatures
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from flowforge import tables
from flowforge.errors import Conflict
from flowforge.reports import DataObject
from flowforge.settings import Settings
from flowforge.storage import ObjectStore, s3_url
from services.silver.engine import polars_errors, storage_options

# String statistics longer than this are left out (Delta readers may truncate them).
STAT_STRING_CHARS = 32


@dataclass(frozen=True)
class StagedFile:
    key: str  # the object's key in the bucket, inside the table's folder
    size_bytes: int
    rows: int
    stats: dict[str, Any] | None = None  # Delta file statistics beyond the row count

    def described(self) -> DataObject:
        return DataObject(key=self.key, size_bytes=self.size_bytes, rows=self.rows)

    @classmethod
    def of(cls, obj: DataObject) -> StagedFile:
        return cls(obj.key, obj.size_bytes, obj.rows)


class Staging:
    """The files one refine stages into one table."""

    def __init__(self, store: ObjectStore, settings: Settings, ref: tables.TableRef) -> None:
        self.store, self.settings, self.ref = store, settings, ref
        self.files: list[StagedFile] = []

    def next_key(self) -> str:
        return f"{self.ref.path}/part-{uuid.uuid4()}.parquet"

    def sink(
        self, frame: pl.LazyFrame, key: str, stats: dict[str, Any] | None = None
    ) -> pl.LazyFrame:
        """A lazy sink of `frame` to `key` (run it with collect_all); noted once written."""

        def note(args: Any) -> None:
            self.files.extend(StagedFile(key, p.num_bytes, p.num_rows, stats) for p in args.paths)

        return frame.sink_parquet(
            s3_url(self.settings, key),
            storage_options=storage_options(self.settings),
            compression="zstd",
            maintain_order=stats is not None,  # rows in key order: row groups prune too
            lazy=True,
            sinked_paths_callback=note,
        )

    def write(self, frame: pl.DataFrame, doing: str) -> None:
        """Writes one file, with its columns' statistics (a MERGE skips the files whose
        key range its batch's keys miss)."""
        with polars_errors(doing):
            self.sink(frame.lazy(), self.next_key(), file_stats(frame)).collect()

    def drop_empty(self) -> None:
        """Deletes staged files without rows (a sink writes one even for no rows)."""
        empty = [f for f in self.files if not f.rows]
        if empty:
            self.store.delete_keys([f.key for f in empty])
            self.files = [f for f in self.files if f.rows]

    def discard(self) -> None:
        """Deletes this refine's staged files (only before it tried to commit)."""
        if self.files:
            self.store.delete_keys([f.key for f in self.files])
            self.files = []


def arrow_schema(schema: pl.Schema) -> pa.Schema:
    return pl.DataFrame(schema=schema).to_arrow().schema


def commit_files(
    settings: Settings,
    ref: tables.TableRef,
    table: DeltaTable | None,
    files: list[StagedFile],
    schema: pa.Schema,
    mode: str,
    properties: CommitProperties,
) -> None:
    """Adds the staged files to the table in one commit (mode append or overwrite); the
    first commit creates the table. Two runs committing from one snapshot: one Conflict."""
    now = int(time.time() * 1000)
    actions: list[AddAction | RemoveAction] = [
        AddAction(
            f.key.rsplit("/", 1)[1],
            f.size_bytes,
            {},
            now,
            True,
            json.dumps({"numRecords": f.rows, **(f.stats or {})}),
        )
        for f in files
    ]
    delta_schema = Schema.from_arrow(schema)
    with tables.delta_errors(f"committing {ref}", ref):
        if table is None:
            # No retry: delta-rs would retry a lost race for version 0 as version 1, a
            # second CREATE TABLE on top of the winner's, with both runs' files in it.
            once = CommitProperties(
                custom_metadata=properties.custom_metadata,
                app_transactions=properties.app_transactions,
                max_commit_retries=0,
            )
            try:
                create_table_with_add_actions(
                    ref.uri(settings),
                    delta_schema,
                    [a for a in actions if isinstance(a, AddAction)],
                    mode="error",
                    storage_options=tables.storage_options(settings),
                    commit_properties=once,
                )
            except Exception as exc:
                if "already exists" in str(exc):  # another run created it first
                    raise Conflict(
                        f"another run created {ref} first; this run's commit was not made"
                    ) from None
                raise
            return
        require_features(table, schema)
        table.create_write_transaction(
            actions, mode=mode, schema=delta_schema, commit_properties=properties
        )


def file_stats(frame: pl.DataFrame) -> dict[str, Any]:
    """Null counts of every column; least and greatest values of number, date and short
    text columns, in the Delta log's JSON form."""
    nulls = {name: frame[name].null_count() for name in frame.columns}
    lows: dict[str, Any] = {}
    highs: dict[str, Any] = {}
    for name, dtype in frame.schema.items():
        column = frame[name]
        if nulls[name] == frame.height:
            continue
        low, high = column.min(), column.max()
        if dtype.is_numeric() and not dtype.is_decimal():  # see transform.ranged
            lows[name], highs[name] = low, high
        elif dtype == pl.Date():
            lows[name], highs[name] = low.isoformat(), high.isoformat()  # type: ignore[union-attr]
        elif dtype == pl.String() and max(len(low), len(high)) <= STAT_STRING_CHARS:  # type: ignore[arg-type]
            lows[name], highs[name] = low, high
    return {"minValues": lows, "maxValues": highs, "nullCount": nulls}


def require_features(table: DeltaTable, schema: pa.Schema) -> None:
    """A timestamp without time zone needs its table feature: delta-rs would otherwise
    commit a schema that no reader (itself included) loads again."""
    naive = any(pa.types.is_timestamp(f.type) and f.type.tz is None for f in schema)
    features = set(table.protocol().reader_features or ())
    if naive and "timestampNtz" not in features:
        table.alter.add_feature(
            TableFeatures.TimestampWithoutTimezone, allow_protocol_versions_increase=True
        )


def file_schema(settings: Settings, key: str) -> pa.Schema:
    """The schema of one staged file (to commit files a run staged but did not commit)."""
    with polars_errors("reading a staged file's schema"):
        schema = pl.scan_parquet(
            s3_url(settings, key), storage_options=storage_options(settings)
        ).collect_schema()
    return arrow_schema(schema)
