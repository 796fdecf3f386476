"""Bronze's pure functions, without any I/O."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from flowforge.errors import InvalidArgument
from services.bronze.convert import bronze_batches
from services.bronze.options import CsvOptions
from services.bronze.parse import (
    LinesUncertain,
    ParseFallback,
    Restart,
    line_breaks,
    parse_compat,
    parse_fast,
)
from services.bronze.sniff import looks_like_header, sniff
from services.bronze.transform import Audit, decode_fields, to_bronze, unique_column_names

AUDIT = Audit(datetime(2026, 1, 1, tzinfo=UTC), "landing/w/j/a.csv", "etag", "r1", "w", "j")


def test_sniff_finds_delimiter_header_bom_and_line_ending() -> None:
    dialect, records = sniff(b"\xef\xbb\xbfid;name\r\n1;Ann\r\n", CsvOptions.validated(), True)
    assert (dialect.delimiter, dialect.header, dialect.bom_bytes) == (";", True, 3)
    assert (dialect.line_terminator, dialect.sniffed) == ("CRLF", True)
    assert records[0] == ["id", "name"]


@pytest.mark.parametrize(
    ("first", "header"),
    [
        (["id", "name", "email"], True),
        (["", "name"], True),
        (["1", "Ann"], False),
        (["2024-01-01", "x"], False),
        (["ann@example.com", "Ann"], False),
        (["-1.5e3", "x"], False),
        ([], False),
    ],
)
def test_header_heuristic(first: list[str], header: bool) -> None:
    assert looks_like_header(first) is header


def test_unique_column_names() -> None:
    names, warnings = unique_column_names(["a", "", "a", "a_2", "_row_number"])
    assert names == ["a", "column_2", "a_2", "a_2_2", "_row_number_2"]
    assert len(warnings) == 4


def test_options_are_validated_with_field_names() -> None:
    assert CsvOptions.validated(delimiter="\\t").delimiter == "\t"
    assert CsvOptions.validated(encoding="LATIN-1").encoding == "iso8859-1"
    with pytest.raises(InvalidArgument, match="csv.escape"):
        CsvOptions.validated(escape="ab")


def _dialect(data: bytes):  # type: ignore[no-untyped-def]
    return sniff(data, CsvOptions.validated(), True)[0]


@pytest.mark.parametrize("block", [1 << 20, 64])  # tiny blocks: rejects in many blocks
def test_fast_parser_numbers_rows_around_rejects(block: int) -> None:
    rows = [b"%d,x" % i if i % 7 else b"%d" % i for i in range(1, 200)]
    data = b"id,v\n" + b"\n".join(rows) + b"\n"
    batches = list(parse_fast(io.BytesIO(data), _dialect(data), ["id", "v"], block))
    numbers = np.concatenate([b.row_numbers for b in batches])
    ids = [int(v) for b in batches for v in b.fields.column("id").to_pylist()]
    assert ids == [int(n) for n in numbers]  # row i holds id i
    rejected = [r.row_number for b in batches for r in b.rejects]
    assert sorted(rejected) == [i for i in range(1, 200) if i % 7 == 0]


def test_fast_parser_hands_over_when_it_cannot_decode_a_ragged_row() -> None:
    data = b"a,b\n1,2\n\xff\n"
    with pytest.raises(ParseFallback):
        list(parse_fast(io.BytesIO(data), _dialect(data), ["a", "b"], 1 << 20))
    batches = list(parse_compat(io.BytesIO(data), _dialect(data), ["a", "b"]))
    assert [r.row_number for r in batches[0].rejects] == [2]
    assert batches[0].rejects[0].raw_line == "\\xff"


def test_line_breaks_counts_crlf_lf_and_lone_cr_once_each() -> None:
    assert line_breaks(b"") == 0
    assert line_breaks(b"a\nb\r\nc\rd") == 3
    assert line_breaks(b"\r\r\n\n\r") == 4


def _read(
    data: bytes, compat: bool, options: CsvOptions | None = None
) -> tuple[list[tuple[int, int]], int]:
    """The (row number, line number) of each reject, and how many restarts it took."""
    dialect, records = sniff(data, options or CsvOptions.validated(), True)
    names, _ = unique_column_names(records[0])
    rejects, restarts = [], 0
    for item in bronze_batches(
        lambda: contextlib.nullcontext(io.BytesIO(data)), dialect, names, 1 << 20, AUDIT, (), compat
    ):
        if isinstance(item, Restart):
            rejects, restarts = [], restarts + 1
        else:
            rejects += [(r.row_number, r.line_number) for r in item.rejects]
    return rejects, restarts


@pytest.mark.parametrize("compat", [False, True], ids=["fast", "compat"])
def test_rejects_carry_the_physical_line_after_multiline_values(compat: bool) -> None:
    # Row 3 `3,y,z` is on line 6: the header is line 1, row 1 spans lines 2 to 4.
    data = b'id,txt\n1,"l1\nl2\nl3"\n2,x\n3,y,z\n'
    assert _read(data, compat) == ([(3, 6)], 0)
    # The same with CRLF (one break each) and CR line endings, and a trailing blank line.
    assert _read(data.replace(b"\n", b"\r\n") + b"\r\n", compat) == ([(3, 6)], 0)
    assert _read(data.replace(b"\n", b"\r"), compat) == ([(3, 6)], 0)


@pytest.mark.parametrize("compat", [False, True], ids=["fast", "compat"])
def test_a_quoted_line_break_in_the_header_counts(compat: bool) -> None:
    data = b'"i\nd",v\n1,2\n3\n'
    assert _read(data, compat) == ([(2, 4)], 0)


def test_blank_lines_send_a_file_with_rejects_to_the_compatibility_parser() -> None:
    data = b'id,txt\n1,"a\n\nb"\n\n2,x\n3,y,z\n'  # a blank line inside a value, one outside
    dialect = _dialect(data)
    items = list(parse_fast(io.BytesIO(data), dialect, ["id", "txt"], 1 << 20))
    assert isinstance(items[-1], LinesUncertain)
    assert _read(data, compat=False) == ([(3, 7)], 1)
    assert _read(data, compat=True) == ([(3, 7)], 0)
    # Without rejects the line numbers are not used, and the fast parser's reading stands.
    assert _read(data.replace(b"3,y,z", b"3,y"), compat=False) == ([], 0)
    # Blank lines inside values or at the end move no line number.
    assert _read(b'id,txt\n1,"a\n\nb"\n3,y,z\n\n\n', compat=False) == ([(2, 5)], 0)


def test_line_breaks_the_fast_parser_cannot_count_send_rejects_to_compat() -> None:
    # An escaped CR ending a field, then LF: one CRLF in the file, so row 2 is on line 3.
    escaped = CsvOptions.validated(delimiter="|", escape="\\", header=True)
    assert _read(b"id|note\n1|a\\\r\n2\n", False, escaped) == ([(2, 3)], 1)
    assert _read(b"id|note\n1|a\\\r\n2\n", True, escaped) == ([(2, 3)], 0)
    # UTF-16: the bytes' line breaks are not countable.
    utf16 = CsvOptions.validated(encoding="utf-16")
    assert _read('id,txt\n1,"a\nb"\n2\n'.encode("utf-16"), False, utf16) == ([(2, 4)], 1)


def test_decode_splits_rows_with_undecodable_bytes() -> None:
    fields = pa.RecordBatch.from_arrays(
        [pa.array([b"1", b"2", b"3"]), pa.array([b"ok", b"\xc3", b"fine"])], names=["id", "v"]
    )
    text, numbers, rejects = decode_fields(
        fields, np.array([1, 2, 4]), np.array([2, 3, 7]), ",", "utf-8"
    )
    assert text["id"].to_list() == ["1", "3"]
    assert numbers.tolist() == [1, 4]
    assert [(r.row_number, r.line_number, r.kind) for r in rejects] == [(2, 3, "invalid_encoding")]
    assert "column 'v'" in rejects[0].reason
    assert rejects[0].raw_line == "2,\\xc3"


def test_to_bronze_hashes_raw_text_before_null_markers() -> None:
    text = pl.DataFrame({"a": ["NULL", "x"]})
    plain = to_bronze(text, np.array([1, 2]), AUDIT, ())
    marked = to_bronze(text, np.array([1, 2]), AUDIT, ("NULL",))
    assert marked["a"].to_list() == [None, "x"]
    assert marked["_row_hash"].to_list() == plain["_row_hash"].to_list()
    assert marked["_row_number"].to_list() == [1, 2]


def test_control_characters_in_headers_are_replaced() -> None:
    names, warnings = unique_column_names(["a\x00b", "c\nd", "tab\tok"])
    assert names == ["a_b", "c_d", "tab\tok"]
    assert len(warnings) == 2


def test_headers_that_look_like_regexes_are_plain_names() -> None:
    text = pl.DataFrame({"^a.*$": ["x"], "ab": ["y"]})
    frame = to_bronze(text, np.array([1]), AUDIT, ("y",))
    assert (frame.get_column("^a.*$")[0], frame.get_column("ab")[0]) == ("x", None)
