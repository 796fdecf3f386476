"""What the CSV parsers hand on: batches of raw field bytes, and the rows they reject."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from flowforge.settings import Settings

WRONG_FIELD_COUNT = "wrong_field_count"
INVALID_ENCODING = "invalid_encoding"
FIELD_TOO_LARGE = "field_too_large"

# FLOWFORGE_BRONZE_MAX_FIELD_MB's default, for callers that do not pass the setting.
DEFAULT_MAX_FIELD_BYTES = int(Settings.model_fields["bronze_max_field_mb"].default) << 20

# A reject's raw_line holds at most this many characters of its row (a row may be as
# large as its width times the field limit); the reason says when it was cut.
RAW_LINE_MAX_CHARS = 8192


@dataclass(frozen=True)
class Reject:
    row_number: int  # data row number within its file, 1-based
    line_number: int  # physical line of the file where the record starts, 1-based
    kind: str  # WRONG_FIELD_COUNT, INVALID_ENCODING or FIELD_TOO_LARGE
    reason: str
    raw_line: str


@dataclass
class ParsedBatch:
    fields: pa.RecordBatch  # one binary column per CSV column
    row_numbers: np.ndarray  # int64 data row number of each row in `fields`
    line_numbers: np.ndarray  # int64 physical line where each row in `fields` starts
    rejects: list[Reject]


def reject(row_number: int, line_number: int, kind: str, reason: str, raw_line: str) -> Reject:
    """A Reject whose raw_line is at most RAW_LINE_MAX_CHARS long: cut, saying so."""
    if len(raw_line) > RAW_LINE_MAX_CHARS:
        raw_line = raw_line[:RAW_LINE_MAX_CHARS]
        reason += f"; raw_line holds the row's first {RAW_LINE_MAX_CHARS:,} characters"
    return Reject(row_number, line_number, kind, reason, raw_line)


def wrong_field_count(
    row_number: int, line_number: int, expected: int, found: int, raw_line: str
) -> Reject:
    return reject(
        row_number,
        line_number,
        WRONG_FIELD_COUNT,
        f"expected {expected} fields, found {found}",
        raw_line,
    )


def field_too_large(
    row_number: int,
    line_number: int,
    names: list[str],
    index: int,
    size: int,
    limit: int,
    raw_line: str,
) -> Reject:
    """A row rejected for field `index` (from 0) of `size` bytes, over `limit` bytes."""
    if index < len(names):
        field = f"column {names[index]!r} (field {index + 1})"
    else:
        field = f"field {index + 1} (beyond the {len(names)} columns)"
    return reject(
        row_number,
        line_number,
        FIELD_TOO_LARGE,
        f"{field} holds {size:,} bytes, over the field limit of {limit:,} bytes "
        f"(FLOWFORGE_BRONZE_MAX_FIELD_MB={limit / (1 << 20):g})",
        raw_line,
    )


def batch_raw_line(fields: pa.RecordBatch, row: int, delimiter: str) -> str:
    """A batch row's fields joined by the delimiter, each cut to one character more than
    the raw_line bound (so that a cut row is longer than it). For rejected rows: a few per
    file, so Python per field is fine."""
    cut = RAW_LINE_MAX_CHARS + 1
    values = [
        # 4 bytes per character at most: enough bytes to make `cut` characters.
        (column[row].as_py() or b"")[: 4 * cut].decode("utf-8", errors="backslashreplace")[:cut]
        for column in fields.columns
    ]
    return delimiter.join(values)
