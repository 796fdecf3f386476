"""Property-based tests: hostile CSV files, bronze's invariants on each (no I/O)."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flowforge.bronze_columns import AUDIT_COLUMNS
from services.bronze.convert import BronzeBatch, bronze_batches
from services.bronze.options import CsvOptions
from services.bronze.parse import LinesUncertain, ParseFallback, Restart, parse_fast
from services.bronze.sniff import SAMPLE_BYTES, sniff
from services.bronze.transform import Audit, unique_column_names
from tests.bronze.strategies import CsvDocument, csv_documents

AUDIT = Audit(datetime(2026, 1, 1, tzinfo=UTC), "landing/w/j/f.csv", "e", "r", "w", "j")


def read_bronze(
    data: bytes, options: CsvOptions, block: int, compat: bool = False
) -> tuple[dict, dict]:
    """What bronze keeps and rejects (row number -> (kind, line number)) for one file,
    through the same code ingest uses (`compat`: with the compatibility parser only)."""
    dialect, records = sniff(data[:SAMPLE_BYTES], options, complete=len(data) <= SAMPLE_BYTES)
    if not records:
        return {}, {}
    names, _ = unique_column_names(records[0])
    kept: dict[int, list[str]] = {}
    rejected: dict[int, tuple[str, int]] = {}

    def open_stream():  # type: ignore[no-untyped-def]
        return contextlib.nullcontext(io.BytesIO(data))

    for batch in bronze_batches(open_stream, dialect, names, block, AUDIT, (), compat):
        if isinstance(batch, Restart):
            kept, rejected = {}, {}
            continue
        assert isinstance(batch, BronzeBatch)
        source = [c for c in batch.frame.columns if c not in AUDIT_COLUMNS]
        for row in batch.frame.iter_rows(named=True):
            assert row["_row_number"] not in kept
            kept[row["_row_number"]] = [row[c] for c in source]
        for reject in batch.rejects:
            assert reject.row_number not in rejected
            rejected[reject.row_number] = (reject.kind, reject.line_number)
    return kept, rejected


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    document=csv_documents(),
    block=st.sampled_from([4096, 1 << 16, 16 << 20]),
    compat=st.booleans(),
)
def test_every_row_kept_exactly_or_rejected(
    document: CsvDocument, block: int, compat: bool
) -> None:
    options = CsvOptions.validated(delimiter=document.delimiter, header=True)
    kept, rejected = read_bronze(document.data, options, block, compat)
    # Well-formed rows survive byte for byte, at their row numbers.
    assert kept == document.rows
    # Every other data row is in the rejects, for the right reason, at its physical line.
    kinds = {n: kind for n, (kind, _) in rejected.items()}
    assert sorted(n for n, kind in kinds.items() if kind == "wrong_field_count") == document.ragged
    assert sorted(n for n, kind in kinds.items() if kind == "invalid_encoding") == (
        document.undecodable
    )
    assert {n: line for n, (_, line) in rejected.items()} == {
        n: document.lines[n] for n in rejected
    }


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(document=csv_documents(), block=st.sampled_from([4096, 1 << 16, 16 << 20]))
def test_fast_parser_numbers_lines_exactly_or_says_so(document: CsvDocument, block: int) -> None:
    """Without the compatibility parser behind it: every row's line number is right, and
    the fast parser says its line numbers are uncertain exactly when there are blank lines."""
    options = CsvOptions.validated(delimiter=document.delimiter, header=True)
    dialect, records = sniff(document.data, options, complete=True)
    names, _ = unique_column_names(records[0])
    stream = io.BytesIO(document.data[dialect.bom_bytes :])
    try:
        items = list(parse_fast(stream, dialect, names, block))
    except ParseFallback:
        assume(False)  # a file the fast parser hands over (e.g. a field larger than a block)
    uncertain = [item for item in items if isinstance(item, LinesUncertain)]
    assert bool(uncertain) == bool(document.blank_lines)
    lines = {}
    for item in items:
        if not isinstance(item, LinesUncertain):
            lines.update(zip(item.row_numbers.tolist(), item.line_numbers.tolist(), strict=True))
            lines.update((r.row_number, r.line_number) for r in item.rejects)
    assert sorted(lines) == sorted(document.lines)  # every data row numbered
    if not document.blank_lines:
        assert lines == document.lines


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(document=csv_documents())
def test_sniffing_never_crashes_and_accounts_for_every_row(document: CsvDocument) -> None:
    kept, rejected = read_bronze(document.data, CsvOptions.validated(), 1 << 20)
    assert set(kept).isdisjoint(rejected)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    kept, rejected = read_bronze(data, CsvOptions.validated(), 4096)
    assert set(kept).isdisjoint(rejected)
