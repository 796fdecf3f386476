"""Streaming CSV parsing into batches of raw field bytes, numbered, with rejects.

The fast path is Arrow's serial streaming reader: it parses block by block in bounded
memory and reports each row with the wrong field count (with its physical row number)
to a handler, so nothing is dropped silently. Files it cannot read (a ragged row with
undecodable bytes, a field larger than a block, bytes invalid in a non-UTF-8 encoding)
are read again by the compatibility path, Python's csv module, which is slower but
accepts anything.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from flowforge.errors import InvalidArgument
from services.bronze.sniff import Dialect

WRONG_FIELD_COUNT = "wrong_field_count"
INVALID_ENCODING = "invalid_encoding"


@dataclass(frozen=True)
class Reject:
    row_number: int  # data row number within its file, 1-based
    kind: str  # WRONG_FIELD_COUNT or INVALID_ENCODING
    reason: str
    raw_line: str


@dataclass
class ParsedBatch:
    fields: pa.RecordBatch  # one binary column per CSV column
    row_numbers: np.ndarray  # int64 data row number of each row in `fields`
    rejects: list[Reject]


@dataclass(frozen=True)
class Restart:
    """Discard every batch yielded so far: the file is being read again from the start."""

    reason: str


class ParseFallback(Exception):
    """The fast parser cannot read this file; use parse_compat."""


def parse_file(
    open_stream: Callable[[], AbstractContextManager[IO[bytes]]],
    dialect: Dialect,
    names: list[str],
    block_bytes: int,
) -> Iterator[ParsedBatch | Restart]:
    """Parses a whole file: the fast path, or after a Restart the compatibility path."""
    try:
        with open_stream() as stream:
            stream.read(dialect.bom_bytes)
            yield from parse_fast(stream, dialect, names, block_bytes)
        return
    except ParseFallback as why:
        yield Restart(str(why))
    with open_stream() as stream:
        stream.read(dialect.bom_bytes)
        yield from parse_compat(stream, dialect, names)


def wrong_field_count(row_number: int, expected: int, found: int, raw_line: str) -> Reject:
    return Reject(
        row_number, WRONG_FIELD_COUNT, f"expected {expected} fields, found {found}", raw_line
    )


def parse_fast(
    stream: IO[bytes], dialect: Dialect, names: list[str], block_bytes: int
) -> Iterator[ParsedBatch]:
    pending: list[Reject] = []
    skipped = 1 if dialect.header else 0
    expected = len(names)

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        if row.number is None:
            raise ParseFallback("row numbers unknown")
        pending.append(
            wrong_field_count(row.number - skipped, expected, row.actual_columns, row.text)
        )
        return "skip"

    encoding = None if dialect.encoding in ("utf-8", "utf_8") else dialect.encoding
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                column_names=names,
                skip_rows=skipped,
                block_size=block_bytes,
                use_threads=False,  # serial parsing is what makes row numbers known
                encoding=encoding or "utf8",
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=dialect.delimiter,
                quote_char=dialect.quote,
                double_quote=True,
                escape_char=dialect.escape or False,
                newlines_in_values=True,
                ignore_empty_lines=True,
                invalid_row_handler=on_invalid_row,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.binary() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        next_row = 1
        for batch in reader:
            # The parser may already have reported rejects from blocks after this batch.
            numbers, used = _good_row_numbers(next_row, batch.num_rows, pending)
            if len(numbers):
                next_row = int(numbers[-1]) + 1
            yield ParsedBatch(batch, numbers, pending[:used])
            del pending[:used]
        if pending:
            yield ParsedBatch(_empty(names), np.empty(0, dtype=np.int64), pending.copy())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
        raise ParseFallback(str(exc)) from None


def _good_row_numbers(start: int, good: int, pending: list[Reject]) -> tuple[np.ndarray, int]:
    """The numbers of a batch's `good` rows: the first ones from `start` on that were not
    rejected. Returns them and how many of the (ordered) pending rejects they skip over."""
    rejected = [r.row_number for r in pending]
    used = 0
    while used < len(rejected) and rejected[used] <= start + good - 1 + used:
        used += 1
    span = np.arange(start, start + good + used, dtype=np.int64)
    numbers = span[~np.isin(span, np.asarray(rejected[:used], dtype=np.int64))]
    if len(numbers) != good:
        raise ParseFallback("row numbering went out of step")
    return numbers, used


def _empty(names: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], pa.binary()) for _ in names], names=names)


def parse_compat(
    stream: IO[bytes], dialect: Dialect, names: list[str], batch_rows: int = 100_000
) -> Iterator[ParsedBatch]:
    csv.field_size_limit(sys.maxsize)
    text = io.TextIOWrapper(stream, encoding=dialect.encoding, errors="surrogateescape", newline="")
    reader = csv.reader(
        text,
        delimiter=dialect.delimiter,
        quotechar=dialect.quote,
        escapechar=dialect.escape or None,
        doublequote=True,
        strict=False,
    )
    expected = len(names)
    columns: list[list[bytes]] = [[] for _ in names]
    numbers: list[int] = []
    rejects: list[Reject] = []
    row_number = 0
    header_pending = dialect.header
    for record in _records(reader, dialect.encoding):
        if not record:
            continue
        if header_pending:
            header_pending = False
            continue
        row_number += 1
        if len(record) != expected:
            rejects.append(
                wrong_field_count(row_number, expected, len(record), _raw_line(record, dialect))
            )
        else:
            encoded = _encode_fields(record)
            if isinstance(encoded, int):
                rejects.append(
                    Reject(
                        row_number,
                        INVALID_ENCODING,
                        f"bytes not valid in {dialect.encoding} in column {names[encoded]!r}",
                        _raw_line(record, dialect),
                    )
                )
            else:
                for column, value in zip(columns, encoded, strict=True):
                    column.append(value)
                numbers.append(row_number)
        if len(numbers) >= batch_rows or len(rejects) >= batch_rows:
            yield _batch(names, columns, numbers, rejects)
            columns, numbers, rejects = [[] for _ in names], [], []
    if numbers or rejects:
        yield _batch(names, columns, numbers, rejects)


def _records(reader: Iterator[list[str]], encoding: str) -> Iterator[list[str]]:
    try:
        yield from reader
    except UnicodeError as exc:  # the codec gave up on the stream as a whole
        raise InvalidArgument(f"the file cannot be read as {encoding}: {exc}") from None
    except csv.Error as exc:
        raise InvalidArgument(f"the file is not readable as CSV: {exc}") from None


def _encode_fields(record: list[str]) -> list[bytes] | int:
    """UTF-8 bytes of each field, or the index of the first field holding undecodable bytes."""
    out = []
    for index, value in enumerate(record):
        try:
            out.append(value.encode("utf-8"))
        except UnicodeEncodeError:
            return index
    return out


def _raw_line(record: list[str], dialect: Dialect) -> str:
    buffer = io.StringIO()
    csv.writer(
        buffer,
        delimiter=dialect.delimiter,
        quotechar=dialect.quote,
        escapechar=dialect.escape or None,
        lineterminator="",
    ).writerow(record)
    raw = buffer.getvalue().encode("utf-8", errors="surrogateescape")
    return raw.decode("utf-8", errors="backslashreplace")


def _batch(
    names: list[str], columns: list[list[bytes]], numbers: list[int], rejects: list[Reject]
) -> ParsedBatch:
    arrays = [pa.array(values, pa.binary()) for values in columns]
    return ParsedBatch(
        pa.RecordBatch.from_arrays(arrays, names=names),
        np.asarray(numbers, dtype=np.int64),
        rejects,
    )
