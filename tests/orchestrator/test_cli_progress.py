"""What `flowforge run` and `flowforge demo` show of a layer's progress: a rich bar per
layer on a terminal, plain lines as things change otherwise (records built here: the ~100
MB runs through the real stack are tests/api/test_progress.py)."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from rich.console import Console

from cli.console import LayerBars, plain_lines
from orchestrator.store import ExecutionRecord, StepRecord

STARTED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
READING = {  # 40 % of the bytes after 30 s: 45 s left at that rate
    "phase": "reading",
    "bytes_read": 40_000_000,
    "bytes_total": 100_000_000,
    "rows": 400_000,
    "files_done": 0,
    "files_total": 1,
    "updated_at": (STARTED + timedelta(seconds=30)).isoformat(),
}


def execution(status: str, bronze: StepRecord) -> ExecutionRecord:
    return ExecutionRecord(
        id="e1",
        workflow_id="w",
        job_id="j",
        status=status,
        layers=["bronze", "silver"],
        full_refresh=False,
        created_at=STARTED,
        steps=[bronze, StepRecord(layer="silver", status="PENDING")],
    )


RUNNING = StepRecord(layer="bronze", status="RUNNING", started_at=STARTED, progress=READING)


def rendered(record: ExecutionRecord) -> str:
    bars = LayerBars()
    bars.update(record)
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=140, color_system=None).print(bars.renderable())
    return out.getvalue()


def test_a_terminal_shows_a_bar_per_running_layer_with_percent_rows_and_time_left() -> None:
    text = rendered(execution("RUNNING", RUNNING))
    line = next(line for line in text.splitlines() if line.startswith("bronze"))
    for part in ("━", "reading", "40 %", "400,000 rows", "40.0 MB of 100.0 MB", "0 of 1 files"):
        assert part in line, line
    assert "about 45 s left" in line
    assert "silver" not in text  # not started: no bar yet


def test_a_cancelled_run_stops_its_bar_saying_so() -> None:
    stopped = replace(RUNNING, status="FAILED")
    line = rendered(execution("CANCELLED", stopped)).splitlines()[0]
    assert "CANCELLED at reading · 40 %" in line and "left" not in line


def test_plain_lines_say_what_changed() -> None:
    first = execution("RUNNING", RUNNING)
    assert plain_lines(None, first) == [
        "bronze: RUNNING · reading · 40 % · 400,000 rows · 40.0 MB of 100.0 MB · "
        "0 of 1 files · about 45 s left",
        "execution e1: RUNNING",
    ]
    assert plain_lines(first, first) == []  # nothing moved, nothing printed
    later = execution("RUNNING", replace(RUNNING, progress=READING | {"bytes_read": 80_000_000}))
    assert plain_lines(first, later)[0].startswith("bronze: RUNNING · reading · 80 %")
