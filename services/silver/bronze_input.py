"""What silver reads from bronze's Delta table: all of it at one version, or the rows its
commits since a version inserted (its change data feed), with what bronze's log says they
number, so that a read that lost or gained rows is noticed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from flowforge import tables
from flowforge.bronze_columns import AUDIT_COLUMNS
from flowforge.settings import Settings
from services.silver.engine import Workspace, polars_errors, storage_options

CHANGE_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")


@dataclass(frozen=True)
class Batch:
    """The bronze rows one refine reads."""

    rows: pl.LazyFrame
    size_bytes: int  # their Parquet bytes, for the dedupe's memory budget
    expected_rows: int | None  # what bronze's log says they number (None: it does not say)
    version: int  # the bronze version read up to


def arrow_schema(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


def polars_schema(table: DeltaTable) -> pl.Schema:
    frame = pl.from_arrow(arrow_schema(table).empty_table())
    assert isinstance(frame, pl.DataFrame)
    return frame.schema


def source_columns(bronze: DeltaTable) -> list[str]:
    """Bronze's CSV columns, in table order: every column but the audit columns."""
    return [name for name in arrow_schema(bronze).names if name not in AUDIT_COLUMNS]


def whole(settings: Settings, bronze: DeltaTable, ref: tables.TableRef) -> Batch:
    """Every row of the loaded version, read by name from its exact files; a column added
    to bronze after a file was written is null in that file's rows."""
    files = tables.version_files(bronze, ref)
    actions = pl.from_arrow(pa.table(bronze.get_add_actions(flatten=True)))
    assert isinstance(actions, pl.DataFrame)
    records = actions.get_column("num_records") if "num_records" in actions.columns else None
    expected = None if records is None or records.null_count() else int(records.sum())
    size = int(actions.get_column("size_bytes").sum()) if actions.height else 0
    schema = polars_schema(bronze)
    if not files:
        return Batch(pl.LazyFrame(schema=schema), 0, expected, bronze.version())
    rows = pl.scan_parquet(
        files,
        schema=schema,
        missing_columns="insert",
        extra_columns="ignore",
        hive_partitioning=False,
        storage_options=storage_options(settings),
    )
    return Batch(rows, size, expected, bronze.version())


def changes(
    bronze: DeltaTable,
    ref: tables.TableRef,
    since: int,
    commits: list[dict[str, Any]],
    work: Workspace,
) -> Batch:
    """The rows bronze's commits after version `since` inserted (every one an append, as
    refresh.choose checked), spilled to a local file as they stream in."""
    path = work.path("bronze-changes.parquet")
    schema = arrow_schema(bronze)
    if since == bronze.version():  # nothing new: an empty batch
        return Batch(pl.LazyFrame(schema=polars_schema(bronze)), 0, 0, since)
    with (
        tables.delta_errors(f"reading bronze's changes since version {since}", ref),
        polars_errors("reading bronze's changes"),
    ):
        reader = pa.RecordBatchReader.from_stream(
            bronze.load_cdf(starting_version=since + 1, ending_version=bronze.version())
        )
        with pq.ParquetWriter(path, schema, compression="lz4") as writer:
            for batch in reader:
                table = pa.Table.from_batches([batch]).drop_columns(list(CHANGE_COLUMNS))
                writer.write_table(table.select(schema.names).cast(schema))
    return Batch(pl.scan_parquet(path), path.stat().st_size, added_rows(commits), bronze.version())


def added_rows(commits: list[dict[str, Any]]) -> int | None:
    """The rows these commits added, from their add actions' statistics (what the log
    holds whoever wrote it), else their operation metrics; None when neither says."""
    total = 0
    for commit in commits:
        rows = commit.get(tables.ADDED_ROWS)
        if rows is None:
            rows = (commit.get("operationMetrics") or {}).get("num_added_rows")
        if rows is None:
            return None
        total += int(rows)
    return total
