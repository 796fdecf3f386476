"""Pure transforms of parsed CSV batches into bronze rows: decoding, audit columns, hash.

No I/O and no gRPC here: every function takes Arrow or polars data and returns new data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
import polars_hash  # noqa: F401  (registers the stable `nchash` namespace on expressions)
import pyarrow as pa

from flowforge.bronze_columns import AUDIT_COLUMNS, REJECT_TYPES
from services.bronze.rows import INVALID_ENCODING, Reject, batch_raw_line, reject

# The hash folds one xxh3-64 per field: h = h * K xor xxh3_64(field), starting from K.
_HASH_K = 0x9E3779B97F4A7C15
_NULL_FIELD_HASH = 0x5851F42D4C957F2D
# Column names with control characters (NUL above all) break Arrow and Parquet tools.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class Audit:
    ingested_at: datetime
    source_key: str
    source_etag: str
    run_id: str
    workflow_id: str
    job_id: str


def unique_column_names(raw: list[str]) -> tuple[list[str], list[str]]:
    """Header names made usable: empty ones named, duplicates and audit names suffixed."""
    names: list[str] = []
    warnings: list[str] = []
    taken = set(AUDIT_COLUMNS)
    for index, name in enumerate(raw, start=1):
        cleaned = _CONTROL.sub("_", name)
        if cleaned != name:
            warnings.append(f"column {index} header has control characters; named it {cleaned!r}")
        candidate = cleaned if cleaned.strip() else f"column_{index}"
        if candidate != cleaned:
            warnings.append(f"column {index} has an empty header; named it {candidate!r}")
        base, suffix = candidate, 2
        while candidate in taken:
            candidate = f"{base}_{suffix}"
            suffix += 1
        if candidate != base:
            reason = "an audit column" if base in AUDIT_COLUMNS else "a duplicate header"
            warnings.append(f"column {index} {base!r} is {reason}; renamed it {candidate!r}")
        taken.add(candidate)
        names.append(candidate)
    return names, warnings


def generated_column_names(count: int) -> list[str]:
    return [f"column_{i}" for i in range(1, count + 1)]


def decode_fields(
    fields: pa.RecordBatch,
    row_numbers: np.ndarray,
    line_numbers: np.ndarray,
    delimiter: str,
    encoding: str,
) -> tuple[pl.DataFrame, np.ndarray, list[Reject]]:
    """Decodes raw field bytes as UTF-8 text; rows with undecodable bytes become rejects.
    Returns the decoded rows, their row numbers, and the rejects."""
    decoded, invalid = [], np.zeros(fields.num_rows, dtype=bool)
    first_bad_column = np.full(fields.num_rows, -1)
    for index, column in enumerate(fields.columns):
        try:
            decoded.append(column.cast(pa.string_view()))
        except pa.ArrowInvalid:
            bad = np.array([_undecodable(v) for v in column.to_pylist()], dtype=bool)
            first_bad_column[bad & ~invalid] = index
            invalid |= bad
            decoded.append(None)
    if not invalid.any():
        table = pa.Table.from_arrays(decoded, names=fields.schema.names)
        return pl.from_arrow(table), row_numbers, []  # type: ignore[return-value]
    rejects = [
        reject(
            int(row_numbers[i]),
            int(line_numbers[i]),
            INVALID_ENCODING,
            f"bytes not valid in {encoding} in column {fields.schema.names[first_bad_column[i]]!r}",
            batch_raw_line(fields, int(i), delimiter),
        )
        for i in np.flatnonzero(invalid)
    ]
    keep = pa.array(~invalid)
    good = fields.filter(keep)
    table = pa.Table.from_arrays(
        [c.cast(pa.string_view()) for c in good.columns], names=fields.schema.names
    )
    return pl.from_arrow(table), row_numbers[~invalid], rejects  # type: ignore[return-value]


def _undecodable(value: bytes | None) -> bool:
    if value is None:
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def row_hash(text: pl.DataFrame) -> pl.Series:
    """A stable 64-bit hash of each record's raw field values, in column order (the
    unsigned value's bits as Int64).

    Folded in numpy rather than as one polars expression: a fold over thousands of
    columns would be an expression thousands of levels deep.
    """
    # Columns by position: a header such as "^a.*$" would be a regex to pl.col().
    fields = text.select(
        pl.nth(i).nchash.xxh3_64().fill_null(_NULL_FIELD_HASH).alias(f"h{i}")  # type: ignore[attr-defined]
        for i in range(text.width)
    )
    k = np.uint64(_HASH_K)
    acc = np.full(text.height, k, dtype=np.uint64)
    for column in fields.iter_columns():
        acc = (acc * k) ^ column.to_numpy()
    # Stored signed (Delta has no unsigned types): the same 64 bits.
    return pl.Series("_row_hash", acc.view(np.int64), dtype=pl.Int64)


def to_bronze(
    text: pl.DataFrame, row_numbers: np.ndarray, audit: Audit, null_markers: tuple[str, ...]
) -> pl.DataFrame:
    """Adds the audit columns (hash over the raw text) and applies the null markers."""
    columns = text.columns
    frame = text.with_columns(
        pl.lit(audit.ingested_at, dtype=pl.Datetime("us", "UTC")).alias("_ingested_at"),
        pl.lit(audit.source_key).alias("_source_key"),
        pl.lit(audit.source_etag).alias("_source_etag"),
        pl.Series("_row_number", row_numbers, dtype=pl.Int64),
        row_hash(text),
        pl.lit(audit.run_id).alias("_run_id"),
        pl.lit(audit.workflow_id).alias("_workflow_id"),
        pl.lit(audit.job_id).alias("_job_id"),
    )
    if null_markers:
        markers = list(null_markers)
        frame = frame.with_columns(
            pl.when(pl.nth(i).is_in(markers)).then(None).otherwise(pl.nth(i)).alias(c)
            for i, c in enumerate(columns)
        )
    return frame


def rejects_frame(rejects: list[Reject], audit: Audit) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source_key": [audit.source_key] * len(rejects),
            "source_etag": [audit.source_etag] * len(rejects),
            "row_number": [r.row_number for r in rejects],
            "line_number": [r.line_number for r in rejects],
            "kind": [r.kind for r in rejects],
            "reason": [r.reason for r in rejects],
            "raw_line": [r.raw_line for r in rejects],
            "run_id": [audit.run_id] * len(rejects),
        },
        schema=REJECT_TYPES,
    )
