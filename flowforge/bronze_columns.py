"""The bronze tables' columns: every source column as text plus the audit columns, and
the rejects' columns.

The contract between the bronze service, which writes them, and silver, which reads them.
`_row_hash` is the unsigned 64-bit hash reinterpreted as signed: Delta has no unsigned types.
"""

from __future__ import annotations

import polars as pl

AUDIT_TYPES: dict[str, pl.DataType] = {
    "_ingested_at": pl.Datetime("us", "UTC"),
    "_source_key": pl.String(),
    "_source_etag": pl.String(),
    "_row_number": pl.Int64(),
    "_row_hash": pl.Int64(),
    "_run_id": pl.String(),
    "_workflow_id": pl.String(),
    "_job_id": pl.String(),
}
AUDIT_COLUMNS = tuple(AUDIT_TYPES)
# Columns whose min/max a data file's add action records: one landing file per data file,
# so the stats say which file (and ETag) it holds without reading it.
AUDIT_STATS = ("_source_key", "_source_etag", "_row_number", "_run_id")

REJECT_TYPES: dict[str, pl.DataType] = {
    "source_key": pl.String(),
    "source_etag": pl.String(),
    "row_number": pl.Int64(),
    "line_number": pl.Int64(),
    "kind": pl.String(),
    "reason": pl.String(),
    "raw_line": pl.String(),
    "run_id": pl.String(),
}
REJECT_STATS = ("source_key", "source_etag", "row_number", "run_id")


def bronze_schema(columns: list[str]) -> dict[str, pl.DataType]:
    """The schema of a bronze frame with these source columns (for empty outputs)."""
    return {**{name: pl.String() for name in columns}, **AUDIT_TYPES}
