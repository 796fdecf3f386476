"""Progress inside a layer, as the API shows it while a ~100 MB job runs: bronze's bytes
read and silver's rows deduplicated rise at least three times before each step completes;
a cancelled run keeps its step's last progress (the bar stops where it was).

About a minute per test on two busy cores (the CSV is generated once per module)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import Stack
from tests.progress_run import ProgressRun, big_customers_csv, progress_run
from tests.waiting import wait_until

# What rises while each layer works: bronze reads bytes, silver deduplicates rows.
RISING = {"bronze": "bytes_read", "silver": "rows"}


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_customers_csv(tmp_path_factory.mktemp("progress") / "customers.csv")


@pytest.fixture
def run(stack: Stack, sample_workflow: Workflow, big_csv: Path) -> Any:
    with progress_run(stack, sample_workflow, big_csv) as running:
        yield running


def execution(run: ProgressRun, execution_id: str) -> dict[str, Any]:
    response = run.client.get(f"/api/executions/{execution_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def watcher(
    run: ProgressRun, execution_id: str, seen: dict[str, list[Any]], last: dict[str, Any]
) -> Callable[[], bool]:
    """A condition for wait_until: each call reads the execution once and notes each running
    step's progress value when it changed; true once the execution has ended."""

    def ended() -> bool:
        found = execution(run, execution_id)
        last.update(found)
        for step in found["steps"]:
            progress, layer = step["progress"], step["layer"]
            if step["status"] != "RUNNING" or progress is None or layer not in RISING:
                continue
            value = progress.get(RISING[layer])
            if value is not None and (not seen[layer] or seen[layer][-1] != value):
                seen[layer].append(value)
        return found["status"] not in ("PENDING", "RUNNING")

    return ended


def test_bronze_and_silver_report_rising_progress_before_they_complete(run: ProgressRun) -> None:
    execution_id = run.start()
    seen: dict[str, list[Any]] = {"bronze": [], "silver": []}
    last: dict[str, Any] = {}
    wait_until(watcher(run, execution_id, seen, last), 240, "ended")
    assert last["status"] == "COMPLETED", last.get("error")
    for layer in RISING:
        values = seen[layer]
        rising = [b for a, b in zip(values, values[1:], strict=False) if b > a]
        assert len(rising) >= 2 and len(values) >= 3, (layer, values)  # three rising values
        assert values == sorted(values), (layer, values)
    bronze, silver = (s for s in last["steps"] if s["layer"] in RISING)
    # The values come from the layers' own counts: bronze read the whole file at most, and
    # silver deduplicated at most the rows it kept.
    assert seen["bronze"][-1] <= bronze["progress"]["bytes_total"]
    assert seen["silver"][-1] <= bronze["rows_out"]
    assert silver["progress"]["phase"] == "committing"  # the last report it made


def test_a_cancelled_run_keeps_the_last_progress_of_its_step(run: ProgressRun) -> None:
    execution_id = run.start()

    def bronze_reported() -> bool:
        bronze = execution(run, execution_id)["steps"][0]
        return bool(bronze["progress"] and bronze["progress"].get("bytes_read"))

    wait_until(bronze_reported, 120, "reporting bronze's progress")
    cancelled = run.client.post(f"/api/executions/{execution_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    stopped = cancelled.json()["steps"][0]
    assert stopped["status"] == "FAILED"  # the bar stops here, saying cancelled
    assert 0 < stopped["progress"]["fraction"] < 1, stopped["progress"]
    run.runner.join(120)  # the flow stops after bronze
    later = execution(run, execution_id)
    assert later["status"] == "CANCELLED"
    assert [s["status"] for s in later["steps"][1:]] == ["SKIPPED"]
    # Bronze went on reading after the cancel; no later report was recorded.
    assert later["steps"][0]["progress"] == stopped["progress"]
