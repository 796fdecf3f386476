"""CSV records read by the rules of Python's csv module, a field over the size limit
measured and skipped rather than held.

csv.reader itself parses the records, reading the file's lines (as from a file opened
with newline="": CRLF, LF and a lone CR each end one) a chunk at a time. Between chunks
the size of the record under way is checked: once it passes the limit (a huge field, a
huge row, one line longer than that), the record is read again from its start by
RecordMachine (csv_machine.py), csv's own parser written out in Python, which keeps
`keep_chars` of a field over the limit and only counts the rest. It is slower, and only
ever sees such records. A record that ends before the check (within the limit and one
chunk more) comes back whole: the caller checks its fields' sizes.
"""

from __future__ import annotations

import collections
import csv
import itertools
import re
from collections.abc import Callable, Iterator
from typing import TextIO

from services.bronze.csv_machine import Oversized, RecordMachine

# One line with its line break: CRLF, LF or a lone CR.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")
CHUNK_CHARS = 1 << 20

# The line a record starts on (1-based, physical), its fields, its first field over the limit.
Record = tuple[int, list[str], Oversized | None]


def read_records(
    text: TextIO,
    delimiter: str,
    quote: str,
    escape: str,
    limit: int,
    keep_chars: int,
    chunk_chars: int = CHUNK_CHARS,
) -> Iterator[Record]:
    """Every record of `text` (opened with newline=""), blank lines as empty records. A
    field of more than `limit` characters comes back cut to `keep_chars` and reported, or
    whole if its record ended within a chunk of the limit (see above)."""
    source = _Source(text.read, limit, chunk_chars)
    while True:
        # csv.reader reads the source's lines a chunk's worth at a time (no Python per line).
        offset = source.handed
        reader = csv.reader(
            itertools.chain.from_iterable(source),
            delimiter=delimiter,
            quotechar=quote,
            escapechar=escape or None,
            doublequote=True,
            strict=False,
        )
        while True:
            source.record_start = offset + reader.line_num
            try:
                fields = next(reader)
            except StopIteration:
                return
            except _TooLong:  # that reader is done for; a new one goes on after the record
                break
            yield source.record_start + 1, fields, None
        first = source.record_start + 1
        record = RecordMachine(delimiter, quote, escape, limit, keep_chars)
        record.read(source.pieces())
        if record.done:
            yield first, record.fields, record.oversized


class _TooLong(Exception):
    """The current record's text passed the limit."""


class _Source:
    """The text's lines (each with its line break, CRLF, LF or a lone CR; the last may have
    none), handed out a chunk's worth at a time and kept from the start of the current
    record on. Once that record's text passes `limit` characters, the next handing out
    raises _TooLong, and pieces() reads on from the record's start instead."""

    def __init__(self, read: Callable[[int], str], limit: int, chunk_chars: int) -> None:
        self._read, self._limit, self._chunk = read, limit, chunk_chars
        self._ready: collections.deque[str] = collections.deque()  # whole lines, not handed out
        self._rest = ""  # the text after them: no line break, but maybe a CR (of a CRLF?)
        self._eof = False
        self.handed = 0  # lines handed out
        self.record_start = 0  # lines before the current record (kept up to date by the reader)
        # Lists of lines handed out since the current record started: (lines before, lines).
        self._kept: collections.deque[tuple[int, list[str]]] = collections.deque()

    def __iter__(self) -> Iterator[list[str]]:
        return self

    def __next__(self) -> list[str]:
        """The next lines, once every line handed out before has been read."""
        size = self._record_size()
        while not self._ready:
            if size + len(self._rest) > self._limit:
                raise _TooLong
            if self._eof:
                raise StopIteration
            self._fill()
        if size > self._limit:
            raise _TooLong
        lines = list(self._ready)
        self._ready.clear()
        self._kept.append((self.handed, lines))
        self.handed += len(lines)
        return lines

    def pieces(self) -> Iterator[tuple[str, bool]]:
        """The current record's text from its start, as (whole line, True) or, for a line
        longer than a chunk, (piece, False) until its last piece."""
        for before, lines in self._kept:
            yield from ((line, True) for line in lines[max(self.record_start - before, 0) :])
        self._kept.clear()
        partial = False
        while True:
            while self._ready:
                self.handed += 1
                partial = False
                yield self._ready.popleft(), True
            if self._eof:
                if partial:  # the file's last line, without a line break
                    self.handed += 1
                    yield "", True
                return
            if len(self._rest) >= self._chunk:
                cut = len(self._rest) - self._rest.endswith("\r")  # a CR waits for its LF
                piece, self._rest = self._rest[:cut], self._rest[cut:]
                partial = True
                yield piece, False
            self._fill()

    def _record_size(self) -> int:
        """Characters of the current record handed out so far."""
        while self._kept and self._kept[0][0] + len(self._kept[0][1]) <= self.record_start:
            self._kept.popleft()
        size = 0
        for before, lines in self._kept:
            skip = self.record_start - before
            size += sum(map(len, lines[skip:] if skip > 0 else lines))
        return size

    def _fill(self) -> None:
        more = self._read(self._chunk)
        if not more:
            self._eof = True
            if self._rest:
                self._ready.append(self._rest)
                self._rest = ""
            return
        text = self._rest + more
        end = len(text) - text.endswith("\r")
        cut = max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1
        self._ready.extend(_LINE.findall(text, 0, cut))
        self._rest = text[cut:]
