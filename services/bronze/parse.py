"""Streaming CSV parsing into batches of raw field bytes, numbered, with rejects.

The fast path is Arrow's serial streaming reader: it parses block by block in bounded
memory and reports each row with the wrong field count (with its physical row number)
to a handler, so nothing is dropped silently. Files it cannot read (a ragged row with
undecodable bytes, a field larger than a block, bytes invalid in a non-UTF-8 encoding)
are read again by the compatibility path (compat.py), Python's csv module, which is
slower but accepts anything. Both reject a row with a field over the size limit
(FLOWFORGE_BRONZE_MAX_FIELD_MB); the compatibility path never holds such a field whole.

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
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from services.bronze.compat import parse_compat
from services.bronze.field_limit import oversized_in_text, without_oversized
from services.bronze.rows import (
    DEFAULT_MAX_FIELD_BYTES,
    ParsedBatch,
    Reject,
    field_too_large,
    wrong_field_count,
)
from services.bronze.sniff import Dialect


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
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
) -> Iterator[ParsedBatch | Restart | LinesUncertain]:
    """Parses a whole file: the fast path, or after a Restart (or with `compat`) the
    compatibility path. A fast parse may end with LinesUncertain (see there).

    On a fallback the fast path's stream is closed before its Arrow reader is let go
    (the exception holds the reader): closing wakes Arrow's I/O thread if it waits in a
    read, and the reader's cleanup waits for that read to end."""
    if not compat:
        try:
            with open_stream() as stream:
                stream.read(dialect.bom_bytes)
                yield from parse_fast(stream, dialect, names, block_bytes, max_field_bytes)
            return
        except ParseFallback as why:
            yield Restart(str(why))
    with open_stream() as stream:
        stream.read(dialect.bom_bytes)
        yield from parse_compat(stream, dialect, names, max_field_bytes, batch_bytes=block_bytes)


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
    stream: IO[bytes],
    dialect: Dialect,
    names: list[str],
    block_bytes: int,
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
) -> Iterator[ParsedBatch | LinesUncertain]:
    """The file's records as Arrow batches, numbered, with the rows Arrow skipped as
    rejects; then, when the line numbers cannot be trusted, why (LinesUncertain)."""
    read = _FastRead(dialect, names, max_field_bytes)
    counted = _LineBreakCounter(stream)
    try:
        yield from read.numbered(read.open(counted, block_bytes))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
        raise ParseFallback(str(exc)) from None
    if read.next_position == 1:
        return  # no records: no line numbers given
    uncertain = read.uncertainty(counted)
    if uncertain is not None:
        yield uncertain


class _FastRead:
    """One fast parse: the rows Arrow skipped that are not numbered yet, where the next
    record starts, and whether an escaped CR may end a record."""

    def __init__(self, dialect: Dialect, names: list[str], max_field_bytes: int) -> None:
        self.dialect, self.names, self.max_field_bytes = dialect, names, max_field_bytes
        self.pending: list[_Skipped] = []
        self.header = 1 if dialect.header else 0
        self.expected = len(names)
        # With an escape character, an escaped CR ending a record's last field may form a
        # CRLF with the line break after it: one break in the file, two in the count.
        self.escaped_cr = False
        self.next_position, self.next_line = 1, 1

    def on_invalid_row(self, row: pacsv.InvalidRow) -> str:
        """Arrow's callback for a row it cannot parse: kept as a reject, numbered later."""
        dialect = self.dialect
        if row.number is None:
            raise ParseFallback("row numbers unknown")
        self.escaped_cr |= bool(dialect.escape) and row.text.endswith(("\r", dialect.escape))
        lines = 1 + line_breaks(row.text.encode("utf-8", errors="surrogateescape"))
        if row.number <= self.header:
            self.pending.append(_Skipped(row.number, lines, None))
            return "skip"
        number = row.number - self.header
        oversized = oversized_in_text(row.text, dialect, self.max_field_bytes)
        if oversized is None:
            reject = wrong_field_count(number, 0, self.expected, row.actual_columns, row.text)
        else:
            reject = field_too_large(
                number, 0, self.names, oversized.index, oversized.size, self.max_field_bytes,
                row.text,
            )  # fmt: skip
        self.pending.append(_Skipped(row.number, lines, reject))
        return "skip"

    def open(self, counted: _LineBreakCounter, block_bytes: int) -> Any:
        dialect, names = self.dialect, self.names
        encoding = None if dialect.encoding in ("utf-8", "utf_8") else dialect.encoding
        return pacsv.open_csv(
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
                invalid_row_handler=self.on_invalid_row,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.binary() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    def numbered(self, reader: Any) -> Iterator[ParsedBatch]:
        """Each batch with its records' row and line numbers and the skipped rows among
        them as rejects; then the skipped rows after the last batch."""
        header_row_pending = bool(self.header)
        for batch in reader:
            lines = record_lines(batch)
            if self.dialect.escape and batch.num_rows:
                ends = pc.ends_with(batch.column(self.expected - 1), "\r")
                self.escaped_cr |= pc.any(ends).as_py()
            if header_row_pending and not (self.pending and self.pending[0].position == 1):
                if not batch.num_rows:
                    continue  # wait for the header (nothing pending can be numbered yet)
                self.pending.insert(0, _Skipped(1, int(lines[0]), None))
                batch, lines = batch.slice(1), lines[1:]
            header_row_pending = False
            # The parser may already have reported rejects from blocks after this batch.
            used = _skipped_among(self.next_position, batch.num_rows, self.pending)
            parsed = self.number(batch, lines, self.pending[:used])
            del self.pending[:used]
            yield without_oversized(
                parsed, self.names, self.max_field_bytes, self.dialect.delimiter
            )
        if self.pending:
            yield self.number(_empty(self.names), np.empty(0, dtype=np.int64), self.pending)

    def number(
        self, batch: pa.RecordBatch, lines: np.ndarray, skipped: list[_Skipped]
    ) -> ParsedBatch:
        parsed, self.next_position, self.next_line = _numbered(
            batch, lines, skipped, self.next_position, self.next_line, self.header
        )
        return parsed

    def uncertainty(self, counted: _LineBreakCounter) -> LinesUncertain | None:
        """Why the records' line numbers cannot be trusted, when they cannot."""
        if not _lines_countable(self.dialect.encoding):
            return LinesUncertain(f"line breaks are not countable in {self.dialect.encoding} bytes")
        if self.escaped_cr:
            return LinesUncertain("an escaped CR ends a record")
        # Breaks in the file = breaks inside and after the records (the last one's may be
        # missing) + blank lines. Blank lines at the end of the file move no record.
        unaccounted = counted.breaks - (self.next_line - 1) - (counted.trailing - 1)
        if unaccounted:
            return LinesUncertain(f"blank lines between records ({unaccounted} unaccounted breaks)")
        return None


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
