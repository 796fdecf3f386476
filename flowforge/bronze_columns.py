"""The bronze dataset's columns: every source column as text plus the audit columns.

The contract between the bronze service, which writes them, and silver, which reads them.
"""

from __future__ import annotations

import polars as pl

AUDIT_TYPES: dict[str, pl.DataType] = {
    "_ingested_at": pl.Datetime("us", "UTC"),
    "_source_key": pl.String(),
    "_source_etag": pl.String(),
    "_row_number": pl.Int64(),
    "_row_hash": pl.UInt64(),
    "_run_id": pl.String(),
    "_workflow_id": pl.String(),
    "_job_id": pl.String(),
}
AUDIT_COLUMNS = tuple(AUDIT_TYPES)


def bronze_schema(columns: list[str]) -> dict[str, pl.DataType]:
    """The schema of a bronze frame with these source columns (for empty outputs)."""
    return {**{name: pl.String() for name in columns}, **AUDIT_TYPES}
