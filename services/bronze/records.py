"""CSV records read by the rules of Python's csv module, a field over the size limit
measured and skipped rather than held.

csv.reader itself parses the records, reading the file's lines (as from a file opened
with newline="": CRLF, LF and a lone CR each end one) a chunk at a time. Between chunks
the size of the record under way is checked: once it passes the limit (a huge field, a
huge row, one line longer than that), the record is read again from its start by
_Record below, csv's own state machine (strict=False, doublequote) written out in Python,
which keeps `keep_chars` of a field over the limit and only counts the rest. It is
slower, and only ever sees such records. A record that ends before the check (within
the limit and one chunk more) comes back whole: the caller checks its fields' sizes.
"""

from __future__ import annotations

import collections
import csv
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

# One line with its line break: CRLF, LF or a lone CR.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")
CHUNK_CHARS = 1 << 20

# csv's parser states (Modules/_csv.c).
(
    START_RECORD,
    START_FIELD,
    ESCAPED_CHAR,
    IN_FIELD,
    IN_QUOTED_FIELD,
    ESCAPE_IN_QUOTED_FIELD,
    QUOTE_IN_QUOTED_FIELD,
    EAT_CRNL,
    AFTER_ESCAPED_CRNL,
) = range(9)


@dataclass(frozen=True)
class Oversized:
    index: int  # the field's position in its record, from 0
    size: int  # its value's size in UTF-8 bytes (an undecodable byte counts one)


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
        record = _Record(delimiter, quote, escape, limit, keep_chars)
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


def utf8_size(value: str) -> int:
    """The size of a value in UTF-8, an undecodable byte (a surrogate escape) counting one."""
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogateescape"))


class _Record:
    """One record through csv's state machine, fed line by line; a field over the limit
    keeps its first `keep_chars` characters and counts the others' bytes."""

    def __init__(self, delimiter: str, quote: str, escape: str, limit: int, keep: int) -> None:
        self.d, self.q, self.e = delimiter, quote, escape
        specials = re.escape(delimiter) + "\r\n" + re.escape(escape)
        self._unquoted = re.compile(f"[{specials}]")
        self._quoted = re.compile(f"[{re.escape(quote)}{re.escape(escape)}]")
        self._limit, self._keep = limit, keep
        self.state = START_RECORD
        self.fields: list[str] = []
        self.oversized: Oversized | None = None
        self.done = False
        self._parts: list[str] = []
        self._chars = 0  # of the field; once it is over the limit, of what is kept of it
        self._bytes: int | None = None  # once the field is over the limit, its size

    def read(self, pieces: Iterable[tuple[str, bool]]) -> int:
        """Feeds pieces until the record ends; returns how many whole lines it used."""
        used = 0
        for piece, whole in pieces:
            self._feed(piece)
            if whole:
                used += 1
                self._end_line()
                if self.state == START_RECORD:
                    self.done = True
                    return used
        # End of the data inside the record: csv keeps what it has, as here.
        if self._chars or self._bytes is not None or self.state == IN_QUOTED_FIELD:
            self._save()
            self.done = True
        return used

    def _add(self, text: str) -> None:
        if self._bytes is None:
            self._parts.append(text)
            self._chars += len(text)
            if self._chars <= self._limit:
                return
            value = "".join(self._parts)  # over the limit: from here on, count
            self._bytes = utf8_size(value)
            self._parts = [value[: self._keep]]
            self._chars = len(self._parts[0])
            return
        self._bytes += utf8_size(text)
        if self._chars < self._keep:
            kept = text[: self._keep - self._chars]
            self._parts.append(kept)
            self._chars += len(kept)

    def _save(self) -> None:
        if self._bytes is not None and self.oversized is None:
            self.oversized = Oversized(len(self.fields), self._bytes)
        self.fields.append("".join(self._parts))
        self._parts, self._chars, self._bytes = [], 0, None

    def _end_line(self) -> None:
        """What csv does at the end of each line it reads."""
        state = self.state
        if state in (START_FIELD, IN_FIELD, QUOTE_IN_QUOTED_FIELD):
            self._save()
            self.state = START_RECORD
        elif state == ESCAPED_CHAR:
            self._add("\n")
            self.state = IN_FIELD
        elif state == ESCAPE_IN_QUOTED_FIELD:
            self._add("\n")
            self.state = IN_QUOTED_FIELD
        elif state == EAT_CRNL:
            self.state = START_RECORD

    def _feed(self, s: str) -> None:
        """csv's transitions for the characters of one line (or piece of one): runs of
        ordinary characters are found with a regular expression, the others one by one."""
        d, q, e = self.d, self.q, self.e
        i, n, state = 0, len(s), self.state
        while i < n:
            if state in (IN_FIELD, AFTER_ESCAPED_CRNL):
                match = self._unquoted.search(s, i)
                j = match.start() if match else n
                if j > i:
                    self._add(s[i:j])
                    i, state = j, IN_FIELD
                    if i == n:
                        break
                c = s[i]
                i += 1
                if c == "\n" or c == "\r":
                    self._save()
                    state = EAT_CRNL
                elif c == e:
                    state = ESCAPED_CHAR
                else:  # the delimiter
                    self._save()
                    state = START_FIELD
            elif state == IN_QUOTED_FIELD:
                match = self._quoted.search(s, i)
                j = match.start() if match else n
                if j > i:
                    self._add(s[i:j])
                    i = j
                    if i == n:
                        break
                c = s[i]
                i += 1
                state = ESCAPE_IN_QUOTED_FIELD if c == e else QUOTE_IN_QUOTED_FIELD
            elif state == START_RECORD:
                if s[i] == "\n" or s[i] == "\r":
                    i += 1
                    state = EAT_CRNL
                else:
                    state = START_FIELD
            else:
                c = s[i]
                i += 1
                if state == START_FIELD:
                    if c == "\n" or c == "\r":
                        self._save()
                        state = EAT_CRNL
                    elif c == q:
                        state = IN_QUOTED_FIELD
                    elif c == e:
                        state = ESCAPED_CHAR
                    elif c == d:
                        self._save()
                    else:
                        self._add(c)
                        state = IN_FIELD
                elif state == ESCAPED_CHAR:
                    self._add(c)
                    state = AFTER_ESCAPED_CRNL if c == "\n" or c == "\r" else IN_FIELD
                elif state == ESCAPE_IN_QUOTED_FIELD:
                    self._add(c)
                    state = IN_QUOTED_FIELD
                elif state == QUOTE_IN_QUOTED_FIELD:
                    if c == q:
                        self._add(c)
                        state = IN_QUOTED_FIELD
                    elif c == d:
                        self._save()
                        state = START_FIELD
                    elif c == "\n" or c == "\r":
                        self._save()
                        state = EAT_CRNL
                    else:  # strict=False: text after the closing quote joins the field
                        self._add(c)
                        state = IN_FIELD
                elif c != "\n" and c != "\r":  # EAT_CRNL: lines end at their break
                    raise csv.Error("new-line character seen in unquoted field")
        self.state = state
