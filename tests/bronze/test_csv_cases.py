"""Each CSV case through the running bronze service, checked against an independent reading."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowforge.bronze_columns import AUDIT_COLUMNS
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2
from services.bronze.convert import BronzeBatch, bronze_batches
from services.bronze.options import CsvOptions
from services.bronze.parse import Restart
from services.bronze.sniff import sniff
from services.bronze.transform import Audit, unique_column_names
from tests.bronze.conftest import bronze_rows, ingest, rejected_rows, upload
from tests.bronze.oracle import read_expected

CASES = Path(__file__).parent / "cases"

# case file -> (delimiter the oracle uses, header, encoding, csv options sent, sniff expectations)
CASE_TABLE = {
    "rfc4180_crlf.csv": (",", True, "utf-8", None, {"line_terminator": "CRLF"}),
    "bom_lf.csv": (",", True, "utf-8", None, {"bom": True, "line_terminator": "LF"}),
    "empty_values.csv": (",", True, "utf-8", None, {}),
    "semicolon.csv": (";", True, "utf-8", None, {"delimiter": ";", "sniffed": True}),
    "tab.csv": ("\t", True, "utf-8", None, {"delimiter": "\t"}),
    "no_header.csv": (",", False, "utf-8", None, {"header": False}),
    "cr_only.csv": (",", True, "utf-8", None, {"line_terminator": "CR"}),
    "latin1.csv": (",", True, "latin-1", bronze_pb2.CsvOptions(encoding="latin-1"), {}),
    "ragged.csv": (",", True, "utf-8", None, {}),
    "invalid_utf8.csv": (",", True, "utf-8", None, {}),
    "invalid_utf8_ragged.csv": (",", True, "utf-8", None, {}),
    # Line breaks inside quoted values (CRLF, LF, lone CR) before rejects of both kinds.
    "multiline_ragged.csv": (",", True, "utf-8", None, {"line_terminator": "CRLF"}),
}


@pytest.mark.parametrize("case", sorted(CASE_TABLE))
def test_case_matches_independent_reading(
    case: str, bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    delimiter, header, encoding, options, sniffed = CASE_TABLE[case]
    data = (CASES / case).read_bytes()
    key = upload(store, job, case, data)
    result = ingest(bronze, job, csv=options)
    expected = read_expected(data, delimiter, header, encoding)

    # Every data row is accounted for: in bronze or in the rejects.
    assert result.rows_in == expected.data_rows
    assert result.rows_out == len(expected.rows)
    assert result.rows_rejected == len(expected.wrong_field_count) + len(expected.invalid_encoding)
    assert result.rows_in == result.rows_out + result.rows_rejected

    frame = bronze_rows(settings, job)
    assert frame.height == result.total_rows == result.rows_out
    source_columns = [c for c in frame.columns if c not in AUDIT_COLUMNS]
    if header:
        assert source_columns == expected.header
    got = {
        row["_row_number"]: [row[c] for c in source_columns] for row in frame.iter_rows(named=True)
    }
    assert got == expected.rows  # values kept byte for byte as text, at their row numbers
    assert set(frame["_source_key"]) <= {key}
    assert frame["_row_hash"].n_unique() == frame.height or frame.height == 0

    rejects = rejected_rows(settings, job)
    by_kind = {}
    for row in rejects.iter_rows(named=True) if rejects.height else []:
        by_kind.setdefault(row["kind"], []).append(row["row_number"])
        assert row["line_number"] == expected.lines[row["row_number"]]  # where it starts
    assert sorted(by_kind.get("wrong_field_count", [])) == expected.wrong_field_count
    assert sorted(by_kind.get("invalid_encoding", [])) == expected.invalid_encoding
    if rejects.height:
        assert all(rejects["raw_line"].str.len_chars() > 0)
        assert set(rejects["source_key"]) == {key}

    report = result.files[0]
    for field, value in sniffed.items():
        assert getattr(report, field) == value, field


@pytest.mark.parametrize("compat", [False, True], ids=["fast", "compat"])
@pytest.mark.parametrize("case", sorted(CASE_TABLE))
def test_case_rejects_in_each_parser(case: str, compat: bool) -> None:
    """Without I/O, each parser on its own: the rejects' row and line numbers."""
    delimiter, header, encoding, options, _ = CASE_TABLE[case]
    data = (CASES / case).read_bytes()
    expected = read_expected(data, delimiter, header, encoding)
    chosen = CsvOptions.validated(
        delimiter=delimiter, header=header, encoding=options.encoding if options else ""
    )
    dialect, records = sniff(data, chosen, complete=True)
    names, _ = unique_column_names(records[0])
    audit = Audit(datetime(2026, 1, 1, tzinfo=UTC), case, "e", "r", "w", "j")
    rejects = {}
    for batch in bronze_batches(
        lambda: contextlib.nullcontext(io.BytesIO(data)), dialect, names, 1 << 20, audit, (), compat
    ):
        if isinstance(batch, Restart):
            rejects = {}
            continue
        assert isinstance(batch, BronzeBatch)
        rejects.update((r.row_number, r.line_number) for r in batch.rejects)
    bad = expected.wrong_field_count + expected.invalid_encoding
    assert rejects == {number: expected.lines[number] for number in bad}


def test_rfc4180_values_survive_exactly(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "a.csv", (CASES / "rfc4180_crlf.csv").read_bytes())
    ingest(bronze, job)
    frame = bronze_rows(settings, job).sort("_row_number")
    assert frame["name"].to_list() == ["Smith, John", "Jane", ""]
    assert frame["comment"].to_list() == ['said "hi"', "line one\r\nline two", ""]


def test_header_only_and_empty_files(bronze, store: ObjectStore, job: JobKey) -> None:
    upload(store, job, "a_header_only.csv", (CASES / "header_only.csv").read_bytes())
    upload(store, job, "b_empty.csv", b"")
    result = ingest(bronze, job)
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (0, 0, 0)
    statuses = {f.key.rsplit("/", 1)[1]: f.status for f in result.files}
    assert statuses == {"a_header_only.csv": "INGESTED", "b_empty.csv": "EMPTY"}
    assert [c.name for c in result.schema][:3] == ["id", "name", "email"]
    assert any("b_empty.csv" in w and "no rows" in w for w in result.warnings)


def test_messy_headers_are_made_unique_and_reported(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "h.csv", (CASES / "messy_headers.csv").read_bytes())
    result = ingest(bronze, job)
    assert list(result.files[0].columns) == ["id", "column_2", "name", "name_2", "_row_hash_2"]
    assert len([w for w in result.warnings if "h.csv" in w]) == 3
    frame = bronze_rows(settings, job)
    assert frame.select("column_2", "name", "name_2", "_row_hash_2").row(0) == ("a", "b", "c", "d")


def test_null_markers_option(bronze, settings: Settings, store: ObjectStore, job: JobKey) -> None:
    upload(store, job, "n.csv", b"a,b\nNULL,x\n,y\n")
    ingest(bronze, job, csv=bronze_pb2.CsvOptions(null_markers=["NULL", ""]))
    frame = bronze_rows(settings, job).sort("_row_number")
    assert frame["a"].to_list() == [None, None]
    # Without markers every value stays text, exactly as in the file.
    other = JobKey(job.workflow_id, "plain")
    upload(store, other, "n.csv", b"a,b\nNULL,x\n,y\n")
    ingest(bronze, other)
    plain = bronze_rows(settings, other).sort("_row_number")
    assert plain["a"].to_list() == ["NULL", ""]


def test_explicit_options_override_sniffing(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "p.csv", b"1|2|3\n4|5|6\n")
    result = ingest(bronze, job, csv=bronze_pb2.CsvOptions(delimiter="|", header=False))
    assert result.files[0].sniffed is False
    frame = bronze_rows(settings, job).sort("_row_number")
    assert frame.select("column_1", "column_2", "column_3").rows() == [
        ("1", "2", "3"),
        ("4", "5", "6"),
    ]


def test_quote_and_escape_options_are_honoured(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    data = b"id|note\n1|'a|b'\n2|c\\|d\n3|'it''s'\n"
    upload(store, job, "options.csv", data)
    options = bronze_pb2.CsvOptions(delimiter="|", quote="'", escape="\\")
    result = ingest(bronze, job, csv=options)
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (3, 3, 0)
    frame = bronze_rows(settings, job).sort("_row_number")
    assert frame.select("id", "note").rows() == [("1", "a|b"), ("2", "c|d"), ("3", "it's")]
