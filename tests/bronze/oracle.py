"""An independent reading of a CSV file with Python's csv module, to check bronze against."""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

# One physical line with its line break: CRLF, LF or a lone CR (universal newlines).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass
class Expected:
    header: list[str]
    rows: dict[int, list[str]]  # data row number -> fields
    wrong_field_count: list[int]
    invalid_encoding: list[int]
    lines: dict[int, int] = field(default_factory=dict)  # data row number -> its first line

    @property
    def data_rows(self) -> int:
        return len(self.rows) + len(self.wrong_field_count) + len(self.invalid_encoding)


class _Lines:
    """The physical lines of a text, handed to csv.reader one at a time and counted."""

    def __init__(self, text: str) -> None:
        self._lines = (m.group() for m in _LINE.finditer(text))
        self.read = 0

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.read += 1
            yield line


def read_expected(
    data: bytes, delimiter: str = ",", header: bool = True, encoding: str = "utf-8"
) -> Expected:
    csv.field_size_limit(sys.maxsize)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode(encoding, errors="surrogateescape")
    lines = _Lines(text)
    records: list[tuple[int, list[str]]] = []  # (first line, fields), blank lines left out
    first_line = 1
    for record in csv.reader(iter(lines), delimiter=delimiter):
        if record:
            records.append((first_line, record))
        first_line = lines.read + 1
    head = records[0][1] if header and records else []
    body = records[1:] if header else records
    width = len(head) if header else (len(body[0][1]) if body else 0)
    expected = Expected(head, {}, [], [])
    for number, (line, record) in enumerate(body, start=1):
        expected.lines[number] = line
        if len(record) != width:
            expected.wrong_field_count.append(number)
            continue
        try:
            expected.rows[number] = [v.encode("utf-8").decode("utf-8") for v in record]
        except UnicodeEncodeError:
            expected.invalid_encoding.append(number)
    return expected
