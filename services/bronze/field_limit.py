"""The field size limit on the fast parser's rows: a row with a field over it is rejected.

Arrow holds any field up to its block size, so here the limit costs no memory; it keeps
both parsers' answers the same (the compatibility parser never holds such a field)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from services.bronze.csv_machine import Oversized, utf8_size
from services.bronze.records import read_records
from services.bronze.rows import (
    RAW_LINE_MAX_CHARS,
    ParsedBatch,
    batch_raw_line,
    field_too_large,
)
from services.bronze.sniff import Dialect


def without_oversized(
    parsed: ParsedBatch, names: list[str], limit: int, delimiter: str
) -> ParsedBatch:
    """The batch less its rows with a field over `limit` bytes, which join its rejects.
    Only a column holding more than `limit` bytes in all is looked into: an ordinary batch
    costs one size check per column."""
    fields = parsed.fields
    first = np.full(fields.num_rows, -1, dtype=np.int64)  # each row's first oversized field
    sizes = np.zeros(fields.num_rows, dtype=np.int64)
    for index, column in enumerate(fields.columns):
        if column.nbytes <= limit:
            continue
        lengths = pc.binary_length(column).to_numpy(zero_copy_only=False)
        over = (lengths > limit) & (first < 0)
        first[over], sizes[over] = index, lengths[over]
    rows = np.flatnonzero(first >= 0)
    if not len(rows):
        return parsed
    rejects = [
        field_too_large(
            int(parsed.row_numbers[row]),
            int(parsed.line_numbers[row]),
            names,
            int(first[row]),
            int(sizes[row]),
            limit,
            batch_raw_line(fields, int(row), delimiter),
        )
        for row in rows
    ]
    keep = first < 0
    return ParsedBatch(
        fields.filter(pa.array(keep)),
        parsed.row_numbers[keep],
        parsed.line_numbers[keep],
        parsed.rejects + rejects,
    )


def oversized_in_text(text: str, dialect: Dialect, limit: int) -> Oversized | None:
    """The first field over `limit` bytes in one record's text (Arrow gives the rows it
    cannot use as text); a record of at most limit / 4 characters has none."""
    if len(text) * 4 <= limit:
        return None
    records = read_records(
        io.StringIO(text, newline=""),
        dialect.delimiter,
        dialect.quote,
        dialect.escape,
        limit,
        RAW_LINE_MAX_CHARS + 1,
    )
    for _, fields, oversized in records:
        if oversized is not None or not fields:
            return oversized
        sizes = (utf8_size(value) for value in fields)
        return next((Oversized(i, size) for i, size in enumerate(sizes) if size > limit), None)
    return None
