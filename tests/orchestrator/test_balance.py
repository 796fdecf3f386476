"""The balance sheet: every row accounted for, or the gap named."""

from __future__ import annotations

from typing import Any

from orchestrator.balance import balance_sheet


def bronze(rows_in: int, rows_out: int, rejected: int, total: int | None = None) -> dict[str, Any]:
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_rejected": rejected,
        "total_rows": rows_out if total is None else total,
        "files": [{"rows": rows_out, "rows_rejected": rejected}],
    }


def silver(rows_in: int, rows_out: int, quarantined: int, duplicates: int) -> dict[str, Any]:
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_rejected": quarantined,
        "duplicates_removed": duplicates,
    }


def test_balanced_sheet() -> None:
    sheet = balance_sheet({"bronze": bronze(203, 201, 2), "silver": silver(201, 192, 6, 3)})
    assert sheet.balanced and sheet.gaps() == []
    assert sheet.to_dict()["figures"]["quarantined"] == 6


def test_an_unexplained_gap_is_named() -> None:
    sheet = balance_sheet({"bronze": bronze(203, 201, 2), "silver": silver(201, 190, 6, 3)})
    assert not sheet.balanced
    assert sheet.gaps() == ["bronze rows = silver + quarantined + duplicates removed: 201 != 199"]


def test_silver_must_read_every_committed_bronze_row() -> None:
    # Bronze skipped an already-ingested file: the dataset holds more rows than this run read.
    sheet = balance_sheet(
        {"bronze": bronze(10, 10, 0, total=210), "silver": silver(200, 200, 0, 0)}
    )
    assert sheet.gaps() == ["silver read every committed bronze row: 200 != 210"]


def test_from_silver_checks_silver_alone() -> None:
    sheet = balance_sheet({"silver": silver(50, 40, 5, 5), "gold": {}})
    assert sheet.balanced and [c.name for c in sheet.checks] == [
        "bronze rows = silver + quarantined + duplicates removed"
    ]
