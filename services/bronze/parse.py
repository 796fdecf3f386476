"""Streaming CSV parsing into batches of raw field bytes, numbered, with rejects.

The fast path is Arrow's serial streaming reader: it parses block by block in bounded
memory and reports each row with the wrong field count (with its physical row number)
to a handler, so nothing is dropped silently. Files it cannot read (a ragged row with
undecodable bytes, a field larger than a block, bytes invalid in a non-UTF-8 encoding)
are read again by the compatibility path, Python's csv module, which is slower but
accepts anything.

Every row carries two numbers: its data row number (header and blank lines excluded)
and the physical line of the file where it starts (1-based, the header line and every
line break inside earlier quoted values counted; CRLF, LF and a lone CR are one line
break each, as in Python's universal newlines). Arrow gives no byte offsets, so the fast
path adds up the line breaks inside the values of the records before; it cannot see the
blank lines Arrow skips, so it checks at the end that the line breaks it accounted for
are all the file holds, and says so (LinesUncertain) when they are not; the caller then
reads the file again with the compatibility path if the line numbers were used.
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from flowforge.errors import InvalidArgument
from services.bronze.sniff import Dialect

WRONG_FIELD_COUNT = "wrong_field_count"
INVALID_ENCODING = "invalid_encoding"


@dataclass(frozen=True)
class Reject:
    row_number: int  # data row number within its file, 1-based
    line_number: int  # physical line of the file where the record starts, 1-based
    kind: str  # WRONG_FIELD_COUNT or INVALID_ENCODING
    reason: str
    raw_line: str


@dataclass
class ParsedBatch:
    fields: pa.RecordBatch  # one binary column per CSV column
    row_numbers: np.ndarray  # int64 data row number of each row in `fields`
    line_numbers: np.ndarray  # int64 physical line where each row in `fields` starts
    rejects: list[Reject]


@dataclass(frozen=True)
class Restart:
    """Discard every batch yielded so far: the file is being read again from the start."""

    reason: str


@dataclass(frozen=True)
class LinesUncertain:
    """The last item of a fast parse whose line numbers cannot be trusted: the file has
    blank lines between records (Arrow skips them unseen) or line breaks the fast path
    could not account for. Row numbers are right; line numbers may be off after them."""

    reason: str


class ParseFallback(Exception):
    """The fast parser cannot read this file; use parse_compat."""


def parse_file(
    open_stream: Callable[[], AbstractContextManager[IO[bytes]]],
    dialect: Dialect,
    names: list[str],
    block_bytes: int,
    compat: bool = False,
) -> Iterator[ParsedBatch | Restart | LinesUncertain]:
    """Parses a whole file: the fast path, or after a Restart (or with `compat`) the
    compatibility path. A fast parse may end with LinesUncertain (see there)."""
    if not compat:
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


def wrong_field_count(
    row_number: int, line_number: int, expected: int, found: int, raw_line: str
) -> Reject:
    return Reject(
        row_number,
        line_number,
        WRONG_FIELD_COUNT,
        f"expected {expected} fields, found {found}",
        raw_line,
    )


def line_breaks(data: bytes) -> int:
    """The line breaks in `data`: CRLF, LF and a lone CR count as one each.

    Counted with numpy, which lets go of the GIL: the stream is read on Arrow's I/O thread.
    """
    octets = np.frombuffer(data, dtype=np.uint8)
    lf = octets == 0x0A
    breaks = int(np.count_nonzero(lf))
    if b"\r" in data:
        cr = octets == 0x0D
        breaks += int(np.count_nonzero(cr)) - int(np.count_nonzero(cr[:-1] & lf[1:]))
    return breaks


def value_line_breaks(column: pa.Array) -> np.ndarray | None:
    """The line breaks inside each value of a binary column, counted as line_breaks does
    (vectorised); None when the column holds none (checked first on its data buffer)."""
    buffers = column.buffers()
    raw = buffers[2].to_pybytes() if len(buffers) > 2 and buffers[2] is not None else b""
    has_lf, has_cr = b"\n" in raw, b"\r" in raw
    if not (has_lf or has_cr):
        return None
    counts = np.zeros(len(column), dtype=np.int64)
    if has_lf:
        counts += pc.count_substring(column, "\n").to_numpy(zero_copy_only=False)
    if has_cr:
        counts += pc.count_substring(column, "\r").to_numpy(zero_copy_only=False)
        if has_lf:
            counts -= pc.count_substring(column, "\r\n").to_numpy(zero_copy_only=False)
    return counts


def record_lines(fields: pa.RecordBatch) -> np.ndarray:
    """How many physical lines each record spans: one plus the line breaks in its values."""
    lines = np.ones(fields.num_rows, dtype=np.int64)
    for column in fields.columns:
        breaks = value_line_breaks(column)
        if breaks is not None:
            lines += breaks
    return lines


class _LineBreakCounter:
    """A binary stream that counts the line breaks (as line_breaks does) in what is read
    through it, and how many of them end the data read so far (the trailing run)."""

    closed = False

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._last_cr = False
        self.breaks = 0
        self.trailing = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        if chunk:
            self._count(chunk)
        return chunk

    def _count(self, chunk: bytes) -> None:
        split_crlf = self._last_cr and chunk[:1] == b"\n"  # counted with its CR already
        self._last_cr = chunk[-1:] == b"\r"
        self.breaks += line_breaks(chunk) - split_crlf
        end = len(chunk)
        while end and chunk[end - 1] in b"\r\n":
            end -= 1
        if end == 0:
            self.trailing += line_breaks(chunk) - split_crlf
        else:
            self.trailing = line_breaks(chunk[end:])


@dataclass(frozen=True)
class _Skipped:
    """A record Arrow did not return as a row: a reject, or the header."""

    position: int  # Arrow's row number (blank lines not counted)
    lines: int  # physical lines the record spans
    reject: Reject | None  # None for the header; its row and line numbers are placeholders


def _lines_countable(encoding: str) -> bool:
    """Whether line breaks can be counted in the encoded bytes (ASCII-compatible codecs)."""
    name = codecs.lookup(encoding).name
    return "\r\n".encode(name) == b"\r\n" and not name.startswith(("utf-16", "utf-32"))


def parse_fast(
    stream: IO[bytes], dialect: Dialect, names: list[str], block_bytes: int
) -> Iterator[ParsedBatch | LinesUncertain]:
    pending: list[_Skipped] = []
    header = 1 if dialect.header else 0
    expected = len(names)
    # With an escape character, an escaped CR ending a record's last field may form a
    # CRLF with the line break after it: one break in the file, two in the count.
    escaped_cr = False

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        nonlocal escaped_cr
        if row.number is None:
            raise ParseFallback("row numbers unknown")
        escaped_cr |= bool(dialect.escape) and row.text.endswith(("\r", dialect.escape))
        lines = 1 + line_breaks(row.text.encode("utf-8", errors="surrogateescape"))
        if row.number <= header:
            pending.append(_Skipped(row.number, lines, None))
        else:
            reject = wrong_field_count(
                row.number - header, 0, expected, row.actual_columns, row.text
            )
            pending.append(_Skipped(row.number, lines, reject))
        return "skip"

    counted = _LineBreakCounter(stream)
    encoding = None if dialect.encoding in ("utf-8", "utf_8") else dialect.encoding
    try:
        reader = pacsv.open_csv(
            counted,
            read_options=pacsv.ReadOptions(
                column_names=names,
                # The header is parsed as a row (and dropped here): skip_rows would skip
                # one physical line, even inside a quoted header name.
                skip_rows=0,
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
        next_position, next_line = 1, 1
        header_row_pending = bool(header)
        for batch in reader:
            lines = record_lines(batch)
            if dialect.escape and batch.num_rows:
                escaped_cr |= pc.any(pc.ends_with(batch.column(expected - 1), "\r")).as_py()
            if header_row_pending and not (pending and pending[0].position == 1):
                if not batch.num_rows:
                    continue  # wait for the header (nothing pending can be numbered yet)
                pending.insert(0, _Skipped(1, int(lines[0]), None))
                batch, lines = batch.slice(1), lines[1:]
            header_row_pending = False
            # The parser may already have reported rejects from blocks after this batch.
            used = _skipped_among(next_position, batch.num_rows, pending)
            parsed, next_position, next_line = _numbered(
                batch, lines, pending[:used], next_position, next_line, header
            )
            del pending[:used]
            yield parsed
        if pending:
            parsed, next_position, next_line = _numbered(
                _empty(names),
                np.empty(0, dtype=np.int64),
                pending,
                next_position,
                next_line,
                header,
            )
            yield parsed
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
        raise ParseFallback(str(exc)) from None
    if next_position == 1:
        return  # no records: no line numbers given
    if not _lines_countable(dialect.encoding):
        yield LinesUncertain(f"line breaks are not countable in {dialect.encoding} bytes")
    elif escaped_cr:
        yield LinesUncertain("an escaped CR ends a record")
    else:
        # Breaks in the file = breaks inside and after the records (the last one's may
        # be missing) + blank lines. Blank lines at the end of the file move no record.
        unaccounted = counted.breaks - (next_line - 1) - (counted.trailing - 1)
        if unaccounted:
            yield LinesUncertain(f"blank lines between records ({unaccounted} unaccounted breaks)")


def _skipped_among(start: int, good: int, pending: list[_Skipped]) -> int:
    """How many of the (ordered) pending skipped records fall among a batch's `good` rows,
    which are the first records from position `start` on that were not skipped."""
    used = 0
    while used < len(pending) and pending[used].position <= start + good - 1 + used:
        used += 1
    return used


def _numbered(
    fields: pa.RecordBatch,
    lines: np.ndarray,
    skipped: list[_Skipped],
    start: int,
    first_line: int,
    header: int,
) -> tuple[ParsedBatch, int, int]:
    """A batch's rows interleaved, in file order, with the records skipped among them:
    the rows' data row numbers and start lines, the rejects with theirs, and the
    position and line that follow."""
    span = np.arange(start, start + fields.num_rows + len(skipped), dtype=np.int64)
    is_row = ~np.isin(span, np.asarray([s.position for s in skipped], dtype=np.int64))
    if int(is_row.sum()) != fields.num_rows:
        raise ParseFallback("row numbering went out of step")
    span_lines = np.empty(len(span), dtype=np.int64)
    span_lines[is_row] = lines
    span_lines[~is_row] = [s.lines for s in skipped]
    starts = first_line + np.cumsum(span_lines) - span_lines
    rejects = [
        Reject(r.row_number, line, r.kind, r.reason, r.raw_line)
        for r, line in zip((s.reject for s in skipped), starts[~is_row].tolist(), strict=True)
        if r is not None
    ]
    end_line = int(starts[-1] + span_lines[-1]) if len(span) else first_line
    parsed = ParsedBatch(fields, span[is_row] - header, starts[is_row], rejects)
    return parsed, start + len(span), end_line


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
    lines: list[int] = []
    rejects: list[Reject] = []
    row_number = 0
    end_line = 0  # the physical line on which the previous record (or blank line) ended
    header_pending = dialect.header
    for record in _records(reader, dialect.encoding):
        # line_num counts the lines read so far, universal newlines (newline="" above).
        line_number, end_line = end_line + 1, reader.line_num
        if not record:
            continue
        if header_pending:
            header_pending = False
            continue
        row_number += 1
        if len(record) != expected:
            rejects.append(
                wrong_field_count(
                    row_number, line_number, expected, len(record), _raw_line(record, dialect)
                )
            )
        else:
            encoded = _encode_fields(record)
            if isinstance(encoded, int):
                rejects.append(
                    Reject(
                        row_number,
                        line_number,
                        INVALID_ENCODING,
                        f"bytes not valid in {dialect.encoding} in column {names[encoded]!r}",
                        _raw_line(record, dialect),
                    )
                )
            else:
                for column, value in zip(columns, encoded, strict=True):
                    column.append(value)
                numbers.append(row_number)
                lines.append(line_number)
        if len(numbers) >= batch_rows or len(rejects) >= batch_rows:
            yield _batch(names, columns, numbers, lines, rejects)
            columns, numbers, lines, rejects = [[] for _ in names], [], [], []
    if numbers or rejects:
        yield _batch(names, columns, numbers, lines, rejects)


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
