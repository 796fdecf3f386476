"""The compatibility parser: any file Python's csv module reads, slower than Arrow, with
a field over the size limit measured and rejected, never held whole."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from typing import IO

import numpy as np
import pyarrow as pa

from flowforge.errors import InvalidArgument
from services.bronze.csv_machine import Oversized, utf8_size
from services.bronze.records import Record, read_records
from services.bronze.rows import (
    DEFAULT_MAX_FIELD_BYTES,
    INVALID_ENCODING,
    RAW_LINE_MAX_CHARS,
    ParsedBatch,
    Reject,
    field_too_large,
    reject,
    wrong_field_count,
)
from services.bronze.sniff import Dialect


def parse_compat(
    stream: IO[bytes],
    dialect: Dialect,
    names: list[str],
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
    batch_rows: int = 100_000,
    batch_bytes: int = 8 << 20,
) -> Iterator[ParsedBatch]:
    """Batches of at most `batch_rows` rows or about `batch_bytes` of fields."""
    # read_records keeps the records csv.reader sees near the limit; csv's own is not needed.
    csv.field_size_limit(sys.maxsize)
    text = io.TextIOWrapper(stream, encoding=dialect.encoding, errors="surrogateescape", newline="")
    records = read_records(
        text,
        dialect.delimiter,
        dialect.quote,
        dialect.escape,
        limit=max_field_bytes,  # characters: a field over it is over in bytes too
        keep_chars=RAW_LINE_MAX_CHARS + 1,
    )
    expected = len(names)
    # Column lists of bytes, not a list of rows: lists of lists would keep Python's cycle
    # collector busy (bytes are not tracked by it).
    columns: list[list[bytes]] = [[] for _ in names]
    numbers: list[int] = []
    lines: list[int] = []
    rejects: list[Reject] = []
    held = 0  # bytes of the fields in `columns`
    row_number = 0
    header_pending = dialect.header
    for line_number, record, oversized in _records(records, dialect.encoding):
        if not record:
            continue
        if header_pending:
            header_pending = False
            continue
        row_number += 1
        encoded = _encoded(record) if oversized is None and len(record) == expected else None
        size = sum(map(len, encoded)) if encoded else 0
        # Only a row over the limit in all can hide a field over it: one within the limit in
        # characters (read whole) but not in UTF-8 bytes.
        if encoded and (size <= max_field_bytes or max(map(len, encoded)) <= max_field_bytes):
            for column, value in zip(columns, encoded, strict=True):
                column.append(value)
            numbers.append(row_number)
            lines.append(line_number)
            held += size
        else:
            rejects.append(
                _rejected(
                    row_number, line_number, record, oversized, names, dialect, max_field_bytes
                )
            )
        if len(numbers) >= batch_rows or len(rejects) >= batch_rows or held >= batch_bytes:
            yield _batch(names, columns, numbers, lines, rejects)
            columns, numbers, lines, rejects, held = [[] for _ in names], [], [], [], 0
    if numbers or rejects:
        yield _batch(names, columns, numbers, lines, rejects)


def _records(records: Iterator[Record], encoding: str) -> Iterator[Record]:
    try:
        yield from records
    except UnicodeError as exc:  # the codec gave up on the stream as a whole
        raise InvalidArgument(f"the file cannot be read as {encoding}: {exc}") from None
    except csv.Error as exc:
        raise InvalidArgument(f"the file is not readable as CSV: {exc}") from None


def _rejected(
    row_number: int,
    line_number: int,
    record: list[str],
    oversized: Oversized | None,
    names: list[str],
    dialect: Dialect,
    limit: int,
) -> Reject:
    """Why a row is rejected: a field over the limit first, then its field count, then
    bytes the encoding does not allow."""
    raw = _raw_line(record, dialect)
    oversized = oversized or _oversized(record, limit)
    if oversized is not None:
        return field_too_large(
            row_number, line_number, names, oversized.index, oversized.size, limit, raw
        )
    if len(record) != len(names):
        return wrong_field_count(row_number, line_number, len(names), len(record), raw)
    column = next(i for i, value in enumerate(record) if _encoded([value]) is None)
    reason = f"bytes not valid in {dialect.encoding} in column {names[column]!r}"
    return reject(row_number, line_number, INVALID_ENCODING, reason, raw)


def _oversized(record: list[str], limit: int) -> Oversized | None:
    """The first field over `limit` bytes in UTF-8 (only one of over limit / 4 characters
    can be)."""
    if max(map(len, record)) * 4 <= limit:
        return None
    for index, value in enumerate(record):
        size = utf8_size(value)
        if size > limit:
            return Oversized(index, size)
    return None


def _encoded(record: list[str]) -> list[bytes] | None:
    """Each field in UTF-8; None when one holds bytes the file's encoding did not allow
    (escaped surrogates)."""
    try:
        return [value.encode("utf-8") for value in record]
    except UnicodeEncodeError:
        return None


def _raw_line(record: list[str], dialect: Dialect) -> str:
    """The record written back as CSV, each field cut to one more character than a
    reject's raw_line holds (reject() cuts the line and says so)."""
    buffer = io.StringIO()
    csv.writer(
        buffer,
        delimiter=dialect.delimiter,
        quotechar=dialect.quote,
        escapechar=dialect.escape or None,
        lineterminator="",
    ).writerow([value[: RAW_LINE_MAX_CHARS + 1] for value in record])
    raw = buffer.getvalue().encode("utf-8", errors="surrogateescape")
    return raw.decode("utf-8", errors="backslashreplace")


def _batch(
    names: list[str],
    columns: list[list[bytes]],
    numbers: list[int],
    lines: list[int],
    rejects: list[Reject],
) -> ParsedBatch:
    arrays = [pa.array(values, pa.binary()) for values in columns]
    return ParsedBatch(
        pa.RecordBatch.from_arrays(arrays, names=names),
        np.asarray(numbers, dtype=np.int64),
        np.asarray(lines, dtype=np.int64),
        rejects,
    )
