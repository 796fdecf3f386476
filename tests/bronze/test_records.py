"""read_records against the csv module itself (Hypothesis): the same records from the same
lines, however the text is chunked; a field over the limit cut and reported, or whole when
its record ended within a chunk of the limit."""

from __future__ import annotations

import csv
import io
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.bronze.csv_machine import Oversized, utf8_size
from services.bronze.records import read_records

# Every character csv treats apart, two ordinary ones, a multi-byte one and an escaped
# undecodable byte.
ALPHABET = st.sampled_from([*",;|\"'\\\r\n ab\x00", "\u00e9", "\udcff"])


def csv_records(text: str, delimiter: str, quote: str, escape: str) -> list[tuple[int, list[str]]]:
    """(first line, fields) of each record, blank lines included, by csv.reader over the
    text as bronze opens it (newline="")."""
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar=quote,
        escapechar=escape or None,
        doublequote=True,
        strict=False,
    )
    records, end = [], 0
    for record in reader:
        records.append((end + 1, record))
        end = reader.line_num
    return records


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    text=st.text(ALPHABET, max_size=80),
    delimiter=st.sampled_from([",", ";", "|"]),
    quote=st.sampled_from(['"', "'"]),
    escape=st.sampled_from(["", "\\"]),
    limit=st.integers(0, 40),
    chunk=st.integers(1, 9),
    keep=st.integers(0, 6),
)
def test_records_are_the_csv_modules_own(
    text: str, delimiter: str, quote: str, escape: str, limit: int, chunk: int, keep: int
) -> None:
    expected = csv_records(text, delimiter, quote, escape)
    actual = list(
        read_records(io.StringIO(text, newline=""), delimiter, quote, escape, limit, keep, chunk)
    )
    assert [first for first, _, _ in actual] == [first for first, _ in expected]
    for (_, fields, oversized), (_, record) in zip(actual, expected, strict=True):
        if oversized is None:
            assert fields == record
            # Read whole only if its record ended before the next size check.
            assert all(len(value) <= limit + 2 * chunk for value in record)
        else:
            index = next(i for i, value in enumerate(record) if len(value) > limit)
            assert oversized == Oversized(index, utf8_size(record[index]))
            assert fields == [v if len(v) <= limit else v[:keep] for v in record]


def test_a_line_break_split_between_chunks_is_one_line() -> None:
    text = 'a,"b\r\nc"\r\nd,e\r\nf\r'
    for chunk in range(1, len(text) + 1):
        records = read_records(io.StringIO(text, newline=""), ",", '"', "", 100, 0, chunk)
        assert [(first, fields) for first, fields, _ in records] == [
            (1, ["a", "b\r\nc"]),
            (3, ["d", "e"]),
            (4, ["f"]),
        ]
