"""spec.max_bad_percent: a run that quarantines more than that share of the rows it read
(50% unless the spec says otherwise) fails with FAILED_PRECONDITION and commits nothing."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import grpc
import pytest

from flowforge import tables
from flowforge.errors import InvalidArgument
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.specs.silver import parse_spec
from flowforge.storage import ObjectStore
from flowforge.v1 import silver_pb2
from services.bronze.options import CsvOptions
from tests.silver.conftest import fill_bronze, read_silver, refine, serving, silver_objects


def committed(settings: Settings, job: JobKey) -> str | None:
    """The run id of silver's last commit, or None when silver has no table."""
    table = tables.load(settings, tables.TableRef.silver(job))
    return tables.history(table, 1)[0].run_id if table is not None else None


def meter_readings() -> list[list[str]]:
    """Four years of daily readings (1,461 days), written the German way: `;` between
    fields, a decimal comma."""
    first = date(2021, 1, 1)
    days = (date(2025, 1, 1) - first).days
    rows = [["day", "kwh"]]
    for i in range(days):
        kwh = f"{(i * 37 % 10_000) / 100:.2f}".replace(".", ",")
        rows.append([(first + timedelta(days=i)).isoformat(), kwh])
    return rows


def as_csv(rows: list[list[str]], delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def readings_spec(**fields: Any) -> dict[str, Any]:
    kwh = {"source": "kwh", "type": "float", **fields.pop("kwh", {})}
    return {"columns": [{"source": "day", "type": "date"}, kwh], **fields}


@pytest.fixture
def readings(store: ObjectStore, settings: Settings, job: JobKey) -> list[list[str]]:
    rows = meter_readings()
    fill_bronze(store, settings, job, as_csv(rows, ";"), options=CsvOptions.validated(";"))
    return rows[1:]


def test_a_run_that_quarantines_every_row_fails_and_commits_nothing(
    silver, channel, store: ObjectStore, settings: Settings, job: JobKey, readings: list[list[str]]
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        refine(silver, job, readings_spec())
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    n = len(readings)
    assert info.value.details().startswith(
        f"silver kept none of the rows: {n} of the {n} rows read (100.00%) went to "
        "quarantine, above max_bad_percent 50 (spec.max_bad_percent; 100 allows any share); "
        f"top reasons: cast_kwh: {n} rows (cast on column 'kwh'). Nothing was committed"
    )
    assert committed(settings, job) is None and silver_objects(store, job) == []
    assert serving(channel)


def test_max_bad_percent_100_commits_a_run_that_keeps_nothing(
    silver, settings: Settings, job: JobKey, readings: list[list[str]]
) -> None:
    result = refine(silver, job, readings_spec(max_bad_percent=100))
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (
        len(readings),
        0,
        len(readings),
    )
    assert committed(settings, job) == result.run_id


def test_the_same_file_with_its_locale_keeps_every_row(
    silver, settings: Settings, job: JobKey, readings: list[list[str]]
) -> None:
    result = refine(silver, job, readings_spec(kwh={"locale": "de"}))
    assert (result.rows_out, result.rows_rejected) == (len(readings), 0)
    kept = read_silver(settings, job).sort("day")
    assert kept["kwh"].to_list() == [float(Decimal(r[1].replace(",", "."))) for r in readings]


MIXED = [  # id, amount, code: 3 of 5 rows fail a cast
    ["1", "10", "A"],
    ["2", "x", "B"],
    ["3", "y", "C"],
    ["4", "20", "D"],
    ["5", "30", "z"],
]
MIXED_SPEC = {
    "columns": [
        {"source": "id", "type": "integer"},
        {"source": "amount", "type": "integer"},
        {"source": "code"},
    ],
    "expectations": [
        {
            "type": "accepted_values",
            "column": "code",
            "values": ["A", "B", "C", "D"],
            "action": "drop",
        }
    ],
}


def test_the_share_names_the_top_reasons_and_the_ceiling_is_inclusive(
    silver, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    fill_bronze(store, settings, job, as_csv([["id", "amount", "code"], *MIXED]))
    bad = [r for r in MIXED if not r[1].isdigit() or r[2] not in "ABCD"]
    reasons = Counter("cast_amount" if not r[1].isdigit() else "accepted_values_code" for r in bad)
    share = 100 * len(bad) / len(MIXED)
    with pytest.raises(grpc.RpcError) as info:
        refine(silver, job, MIXED_SPEC, run_id="default")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = info.value.details()
    assert f"{len(bad)} of the {len(MIXED)} rows read ({share:.2f}%) went to quarantine" in details
    assert "above max_bad_percent 50 " in details and "kept none" not in details
    assert (
        f"top reasons: cast_amount: {reasons['cast_amount']} rows (cast on column 'amount'), "
        f"accepted_values_code: {reasons['accepted_values_code']} rows "
        "(accepted_values on column 'code')"
    ) in details
    assert committed(settings, job) is None
    # At the ceiling is not above it.
    result = refine(silver, job, {**MIXED_SPEC, "max_bad_percent": share}, run_id="at")
    assert (result.rows_out, result.rows_rejected) == (len(MIXED) - len(bad), len(bad))
    assert committed(settings, job) == "at"


def test_rows_a_unique_rule_quarantines_count_too(
    silver, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    rows = [["id", "email"], ["1", "a@x"], ["2", "a@x"], ["3", "a@x"], ["4", "b@x"]]
    fill_bronze(store, settings, job, as_csv(rows))
    spec = {
        "columns": [{"source": "id", "type": "integer"}, {"source": "email"}],
        "expectations": [{"type": "unique", "column": "email", "action": "drop"}],
    }
    shared = Counter(r[1] for r in rows[1:])
    dropped = sum(n for n in shared.values() if n > 1)
    with pytest.raises(grpc.RpcError) as info:
        refine(silver, job, spec)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"top reasons: unique_email: {dropped} rows (unique on column 'email')" in (
        info.value.details()
    )
    assert committed(settings, job) is None


@pytest.mark.parametrize("value", [101, -1, float("nan")])
def test_max_bad_percent_must_be_a_percentage(value: float) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_spec(silver_pb2.SilverSpec(max_bad_percent=value))
    assert info.value.message == "spec.max_bad_percent must be between 0 and 100"


def test_max_bad_percent_defaults_to_50() -> None:
    assert parse_spec(silver_pb2.SilverSpec()).max_bad_percent == 50
