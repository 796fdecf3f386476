"""The balance sheet: every row accounted for, or the gap named."""

from __future__ import annotations

from typing import Any

from orchestrator.balance import balance_sheet


def bronze(
    rows_in: int, rows_out: int, rejected: int, total: int | None = None, version: int = 0
) -> dict[str, Any]:
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_rejected": rejected,
        "total_rows": rows_out if total is None else total,
        "table_version": version,
        "files": [{"rows": rows_out, "rows_rejected": rejected}],
    }


def silver(
    rows_in: int,
    rows_out: int,
    quarantined: int,
    duplicates: int,
    refresh: str = "full",
    read: tuple[int | None, int] = (None, 0),
) -> dict[str, Any]:
    """`read`: the first bronze version of the changes read (None: all of bronze), the last."""
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_rejected": quarantined,
        "duplicates_removed": duplicates,
        "total_rows": rows_out,
        "refresh": refresh,
        "input_from_version": read[0],
        "input_version": read[1],
    }


def test_balanced_sheet() -> None:
    sheet = balance_sheet({"bronze": bronze(203, 201, 2), "silver": silver(201, 192, 6, 3)})
    assert sheet.balanced and sheet.gaps() == []
    assert sheet.to_dict()["figures"]["quarantined"] == 6


def test_an_unexplained_gap_is_named() -> None:
    sheet = balance_sheet({"bronze": bronze(203, 201, 2), "silver": silver(201, 190, 6, 3)})
    assert not sheet.balanced
    assert sheet.gaps() == ["bronze rows = silver + quarantined + duplicates removed: 201 != 199"]


def test_a_full_rebuild_must_read_every_committed_bronze_row() -> None:
    # Bronze skipped an already-ingested file: the table holds more rows than this run read.
    sheet = balance_sheet(
        {"bronze": bronze(10, 10, 0, total=210), "silver": silver(200, 200, 0, 0)}
    )
    assert sheet.gaps() == ["silver read every committed bronze row: 200 != 210"]


def test_an_incremental_run_reads_the_rows_bronze_inserted_since_its_last_version() -> None:
    # Bronze's run appended 10 rows as version 4 to a table of 210; silver read version 4.
    incremental = silver(10, 7, 1, 2, "incremental", read=(4, 4))
    sheet = balance_sheet(
        {"bronze": bronze(10, 10, 0, total=210, version=4), "silver": incremental}
    )
    assert sheet.balanced
    assert [c.name for c in sheet.checks][-2:] == [
        "silver read the bronze rows inserted since its last version",
        "bronze rows = silver + quarantined + duplicates removed",
    ]
    short = silver(9, 7, 1, 1, "incremental", read=(4, 4))
    sheet = balance_sheet({"bronze": bronze(10, 10, 0, total=210, version=4), "silver": short})
    assert sheet.gaps() == ["silver read the bronze rows inserted since its last version: 9 != 10"]


def test_an_incremental_run_that_also_read_earlier_bronze_commits() -> None:
    # Silver last read version 2 (its run after version 3 failed): it read versions 3 and 4,
    # more rows than this bronze run made; silver checks those against bronze's log itself.
    incremental = silver(25, 20, 3, 2, "incremental", read=(3, 4))
    sheet = balance_sheet(
        {"bronze": bronze(10, 10, 0, total=210, version=4), "silver": incremental}
    )
    assert sheet.balanced
    assert "silver read the bronze rows inserted since its last version" not in [
        c.name for c in sheet.checks
    ]


def test_silver_must_read_the_version_bronze_committed() -> None:
    stale = silver(10, 10, 0, 0, "incremental", read=(3, 3))
    sheet = balance_sheet({"bronze": bronze(10, 10, 0, total=210, version=4), "silver": stale})
    assert sheet.gaps() == ["silver read bronze's latest commit: 3 != 4"]


def test_from_silver_checks_silver_alone() -> None:
    sheet = balance_sheet({"silver": silver(50, 40, 5, 5), "gold": {}})
    assert sheet.balanced and [c.name for c in sheet.checks] == [
        "bronze rows = silver + quarantined + duplicates removed"
    ]
