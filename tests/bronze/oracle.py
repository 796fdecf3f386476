"""An independent reading of a CSV file with Python's csv module, to check bronze against."""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass


@dataclass
class Expected:
    header: list[str]
    rows: dict[int, list[str]]  # data row number -> fields
    wrong_field_count: list[int]
    invalid_encoding: list[int]

    @property
    def data_rows(self) -> int:
        return len(self.rows) + len(self.wrong_field_count) + len(self.invalid_encoding)


def read_expected(
    data: bytes, delimiter: str = ",", header: bool = True, encoding: str = "utf-8"
) -> Expected:
    csv.field_size_limit(sys.maxsize)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode(encoding, errors="surrogateescape")
    records = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if r]
    head = records[0] if header and records else []
    body = records[1:] if header else records
    width = len(head) if header else (len(body[0]) if body else 0)
    expected = Expected(head, {}, [], [])
    for number, record in enumerate(body, start=1):
        if len(record) != width:
            expected.wrong_field_count.append(number)
            continue
        try:
            expected.rows[number] = [v.encode("utf-8").decode("utf-8") for v in record]
        except UnicodeEncodeError:
            expected.invalid_encoding.append(number)
    return expected
