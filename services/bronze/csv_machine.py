"""csv's parser (Modules/_csv.c: strict=False, doublequote) written out in Python, for the
records too large to hand to csv.reader: a field over the limit keeps its first characters
and only the size of the rest is counted."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass

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


def utf8_size(value: str) -> int:
    """The size of a value in UTF-8, an undecodable byte (a surrogate escape) counting one."""
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogateescape"))


class RecordMachine:
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
