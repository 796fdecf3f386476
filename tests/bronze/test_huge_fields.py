"""Fields over FLOWFORGE_BRONZE_MAX_FIELD_MB: the row is rejected, naming the limit, the
other rows are ingested, both parsers agree, and the service goes on serving."""

from __future__ import annotations

import contextlib
import csv
import io
import sys
import tracemalloc
from datetime import UTC, datetime

import grpc
import pytest

from flowforge.layout import JobKey
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2_grpc, common_pb2
from services.bronze.compat import parse_compat
from services.bronze.convert import BronzeBatch, bronze_batches
from services.bronze.options import CsvOptions
from services.bronze.parse import Restart
from services.bronze.rows import RAW_LINE_MAX_CHARS
from services.bronze.sniff import sniff
from services.bronze.transform import Audit, unique_column_names
from tests.bronze.conftest import (
    LIMITED,
    ingest,
    nothing_left_reading,
    read_objects,
    serving,
    upload,
)
from tests.bronze.oracle import read_expected
from tests.faults.proxy import FaultProxy
from tests.waiting import wait_until

LIMIT = LIMITED["bronze_max_field_mb"] << 20
AUDIT = Audit(datetime(2026, 1, 1, tzinfo=UTC), "landing/w/j/a.csv", "e", "r", "w", "j")


def csv_with_a_huge_field(field_bytes: int, rows_after: int) -> bytes:
    """A header, two ordinary rows, row 3 with a quoted `note` of `field_bytes` (line
    breaks inside), then `rows_after` ordinary rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "name", "note"])
    writer.writerow(["1", "ann", "short"])
    writer.writerow(["2", "bob", 'quoted, "inside"'])
    writer.writerow(["3", "cy", (("x" * 1023 + "\n") * (field_bytes // 1024 + 1))[:field_bytes]])
    writer.writerows([str(i), f"name {i}", "y" * 200] for i in range(4, 4 + rows_after))
    return buffer.getvalue().encode()


def check_ingested(store: ObjectStore, result: common_pb2.LayerResult, data: bytes) -> None:
    """Every row the csv module reads is in bronze, whole, or rejected for its field over
    the limit, with the reason and a raw_line cut to its bound."""
    expected = read_expected(data)
    too_large = {
        n: fields
        for n, fields in expected.rows.items()
        if any(len(v.encode()) > LIMIT for v in fields)
    }
    kept = {n: fields for n, fields in expected.rows.items() if n not in too_large}
    assert too_large, "the file has no field over the limit"
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (
        expected.data_rows,
        len(kept),
        len(too_large),
    )
    assert dict(result.rejected_by_reason) == {"field_too_large": len(too_large)}
    frame = read_objects(store, result.data_objects).select("_row_number", *expected.header)
    ingested = {row[0]: list(row[1:]) for row in frame.rows()}
    assert ingested == kept
    rejects = read_objects(store, result.reject_objects).sort("row_number").to_dicts()
    assert [(r["row_number"], r["line_number"], r["kind"]) for r in rejects] == [
        (n, expected.lines[n], "field_too_large") for n in sorted(too_large)
    ]
    for reject in rejects:
        fields = too_large[reject["row_number"]]
        size = len(fields[2].encode())
        assert reject["reason"] == (
            f"column 'note' (field 3) holds {size:,} bytes, over the field limit of "
            f"{LIMIT:,} bytes (FLOWFORGE_BRONZE_MAX_FIELD_MB=1); raw_line holds the row's "
            f"first {RAW_LINE_MAX_CHARS:,} characters"
        )
        assert len(reject["raw_line"]) == RAW_LINE_MAX_CHARS
        assert reject["raw_line"].startswith(f"{fields[0]},{fields[1]},")


def check_still_serving(
    stub: bronze_pb2_grpc.BronzeServiceStub, channel: grpc.Channel, store: ObjectStore, job: JobKey
) -> None:
    wait_until(nothing_left_reading, 10, "done with the streams")
    assert serving(channel)
    other = JobKey(job.workflow_id, "next")
    upload(store, other, "small.csv", b"id,note\n1,a\n2,b\n")
    assert ingest(stub, other, run_id="next").rows_out == 2


@pytest.mark.parametrize("attempt", range(6))
def test_a_field_larger_than_a_parser_block_is_rejected_and_the_service_goes_on(
    limited_bronze: bronze_pb2_grpc.BronzeServiceStub,
    limited_channel: grpc.Channel,
    store_proxy: FaultProxy,
    store: ObjectStore,
    job: JobKey,
    attempt: int,
) -> None:
    """5 MB in 2 MB parser blocks: the fast parser hands the file to the compatibility
    parser while the rest of it is still arriving from a slowed store. That hand-over
    once left Arrow's I/O thread waiting for ever on the closed stream, and the request
    with it (about one run in three), hence the repetitions."""
    data = csv_with_a_huge_field(5 << 20, rows_after=25_000)
    upload(store, job, "big.csv", data)
    store_proxy.set("delay", delay_seconds=0.002)
    result = ingest(limited_bronze, job, timeout=60)
    check_ingested(store, result, data)
    assert any("read with the compatibility parser" in w for w in result.warnings)
    check_still_serving(limited_bronze, limited_channel, store, job)


def test_a_field_over_the_limit_within_a_block_is_rejected_by_the_fast_parser(
    limited_bronze: bronze_pb2_grpc.BronzeServiceStub,
    limited_channel: grpc.Channel,
    store: ObjectStore,
    job: JobKey,
) -> None:
    data = csv_with_a_huge_field(1_500_000, rows_after=100)
    upload(store, job, "big.csv", data)
    result = ingest(limited_bronze, job)
    check_ingested(store, result, data)
    assert not any("compatibility parser" in w for w in result.warnings)
    check_still_serving(limited_bronze, limited_channel, store, job)


def expected_kinds(data: bytes, limit: int) -> dict[int, str]:
    """Each rejected data row's kind, by the csv module: a field over the limit first,
    then the field count, then bytes that are not UTF-8."""
    csv.field_size_limit(sys.maxsize)
    text = io.TextIOWrapper(io.BytesIO(data), errors="surrogateescape", newline="")
    records = [r for r in csv.reader(text) if r]
    kinds = {}
    for number, record in enumerate(records[1:], start=1):
        if any(len(v.encode("utf-8", "surrogateescape")) > limit for v in record):
            kinds[number] = "field_too_large"
        elif len(record) != len(records[0]):
            kinds[number] = "wrong_field_count"
        elif any("\udc80" <= c <= "\udcff" for v in record for c in v):
            kinds[number] = "invalid_encoding"
    return kinds


MIXED = b"\n".join(
    [
        b"id,name,note",
        b"1,ann,ok",
        b'2,quoted,"' + b"q\n" * 40_000 + b'"',  # over the limit, across many lines
        b"3,unquoted," + b"u" * 90_000,  # over the limit, one line
        b"4,ragged," + b"r" * 90_000 + b",extra",  # over the limit and ragged
        b"5,ragged,small,extra",
        b"6,bytes," + "\u00e9".encode() * 40_000,  # 40,000 characters, 80,000 bytes
        b"7,latin," + b"\xe9" * 90_000,  # over the limit and not UTF-8
        b"8,latin,\xe9",
        b"9,bob,fine",
        b"",
    ]
)


@pytest.mark.parametrize("block", [1 << 20, 16 << 10], ids=["in-a-block", "beyond-a-block"])
@pytest.mark.parametrize("compat", [False, True], ids=["fast", "compat"])
def test_both_parsers_reject_the_same_rows_for_the_same_reasons(compat: bool, block: int) -> None:
    limit = 64 << 10
    dialect, records = sniff(MIXED, CsvOptions.validated(delimiter=","), complete=True)
    names, _ = unique_column_names(records[0])
    kept: set[int] = set()
    rejects = {}
    for item in bronze_batches(
        lambda: contextlib.nullcontext(io.BytesIO(MIXED)),
        dialect,
        names,
        block,
        AUDIT,
        (),
        compat,
        max_field_bytes=limit,
    ):
        if isinstance(item, Restart):
            kept, rejects = set(), {}
            continue
        assert isinstance(item, BronzeBatch)
        kept |= set(item.frame["_row_number"])
        rejects.update({r.row_number: r for r in item.rejects})
    kinds = expected_kinds(MIXED, limit)
    assert {n: r.kind for n, r in rejects.items()} == kinds
    assert kept == set(range(1, 10)) - set(kinds)
    lines = read_expected(MIXED).lines
    assert {n: r.line_number for n, r in rejects.items()} == {n: lines[n] for n in kinds}
    assert "column 'note' (field 3) holds 80,000 bytes" in rejects[2].reason  # its value
    assert "column 'note' (field 3) holds 90,000 bytes" in rejects[4].reason
    assert "column 'note' (field 3) holds 80,000 bytes" in rejects[6].reason  # 40,000 é
    for reject in rejects.values():
        assert len(reject.raw_line) <= RAW_LINE_MAX_CHARS
        cut = f"raw_line holds the row's first {RAW_LINE_MAX_CHARS:,} characters"
        assert reject.reason.endswith(cut) == (reject.kind == "field_too_large")


class _HugeFieldStream(io.RawIOBase):
    """A CSV whose second row holds one quoted field of `size` bytes, made up as it is
    read, so that only the parser's own memory shows."""

    def __init__(self, size: int) -> None:
        self._parts = [b'id,note\n1,"', size, b'"\n2,after\n']

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray) -> int:  # type: ignore[override]
        while self._parts:
            part = self._parts[0]
            if isinstance(part, int):
                n = min(part, len(target))
                target[:n] = b"z" * n
                self._parts[0] = part - n
            else:
                n = min(len(part), len(target))
                target[:n] = part[:n]
                self._parts[0] = part[n:]
            if not self._parts[0]:
                self._parts.pop(0)
            if n:
                return n
        return 0


def test_the_compatibility_parser_never_holds_a_field_over_the_limit() -> None:
    """A 64 MB field against a 1 MB limit: the parser's peak allocation stays a small
    multiple of the limit (read in 1 M character chunks), not of the field."""
    dialect, _ = sniff(b"id,note\n1,x\n", CsvOptions.validated(), complete=True)
    tracemalloc.start()
    try:
        batches = list(parse_compat(_HugeFieldStream(64 << 20), dialect, ["id", "note"], LIMIT))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rejects = [r for b in batches for r in b.rejects]
    assert [(r.row_number, r.kind) for r in rejects] == [(1, "field_too_large")]
    assert f"holds {64 << 20:,} bytes" in rejects[0].reason
    assert sum(b.fields.num_rows for b in batches) == 1
    assert peak < 12 * LIMIT, f"peak {peak:,} bytes"
