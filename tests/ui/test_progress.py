"""A running step's progress bar in real headless Chromium: percent, rows and time left on
the jobs page and the execution page; cancelled, the bar stops and says so. And during a
~100 MB job through the real stack, bronze's and silver's bars rise at least three times
each before their steps complete (about a minute on two busy cores)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from orchestrator.liveness import beating
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import Stack
from tests.progress_run import ProgressRun, big_customers_csv, progress_run
from tests.ui.conftest import OUTPUT, RECORD_CSP_VIOLATIONS, TOKEN, Api, csp_violations
from tests.waiting import wait_until

REPORT = {  # what bronze would report a while into a large file
    "phase": "reading",
    "rows": 123_456,
    "bytes_read": 42_370_000,
    "bytes_total": 100_000_000,
    "files_done": 1,
    "files_total": 3,
}
PERCENT = "42 %"  # 42.37 MB of 100 MB
ROWS = f"{REPORT['rows']:,} rows"
FILES = f"{REPORT['files_done']} of {REPORT['files_total']} files"
# Every value each layer's bar in WHERE took, as the page drew it.
RECORD_BARS = """
window.__bars = {};
new MutationObserver(() => {
  for (const bar of document.querySelectorAll(`WHERE .progress[data-layer] progress`)) {
    const layer = bar.parentElement.dataset.layer, value = bar.getAttribute("value");
    const seen = (window.__bars[layer] = window.__bars[layer] || []);
    if (value !== null && seen[seen.length - 1] !== value) seen.push(value);
  }
}).observe(document, { subtree: true, childList: true, attributes: true });
"""


@pytest.fixture
def running(stack: Stack, sample_workflow: Workflow) -> Iterator[tuple[Workflow, str]]:
    """A job's execution with bronze RUNNING, beating as a live flow does."""
    workflow = stack.add_workflow(sample_workflow)
    execution = stack.store.create_execution(workflow.id, "customers", ["bronze", "silver", "gold"])
    stack.store.start_execution(execution.id)
    stack.store.start_step(execution.id, "bronze", f"{execution.id}-bronze")
    stack.store.record_progress(execution.id, "bronze", REPORT)  # as the flow records it
    with beating(stack.store, execution.id, 5):
        yield workflow, execution.id


def test_a_running_step_shows_its_progress_and_stops_when_cancelled(
    api: Api, running: tuple[Workflow, str], browser: Browser
) -> None:
    workflow, execution_id = running
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(60_000)
    page.add_init_script(f"localStorage.setItem('flowforge.token', {TOKEN!r})")
    page.add_init_script(RECORD_CSP_VIOLATIONS)

    page.goto(f"{api.url}/#/jobs")
    job = page.locator(f'article.job[data-workflow="{workflow.id}"][data-job="customers"]')
    bar = job.locator('.step[data-layer="bronze"] .progress[data-progress="running"]')
    bar.wait_for()
    assert bar.locator("progress").get_attribute("value") == str(int(PERCENT.split()[0]))
    text = bar.inner_text()
    for part in ("reading", PERCENT, ROWS, FILES, "left"):
        assert part in text, text
    assert bar.get_by_role("progressbar", name="bronze progress").count() == 1
    assert job.locator('.step[data-layer="silver"] .progress').count() == 0  # no report
    OUTPUT.mkdir(exist_ok=True)
    job.screenshot(path=OUTPUT / "ui-progress-jobs.png")

    job.locator(".latest a").click()
    bronze = page.locator('.steps-table tr[data-layer="bronze"]')
    cell = bronze.locator('.progress[data-progress="running"]')
    cell.wait_for()
    assert "left" in cell.inner_text() and PERCENT in cell.inner_text()
    page.get_by_role("button", name="Cancel").click()
    stopped = bronze.locator('.progress[data-progress="stopped"]')
    expect(stopped).to_contain_text(f"cancelled at {PERCENT}")
    assert ROWS in stopped.inner_text() and "left" not in stopped.inner_text()
    assert stopped.locator("progress").get_attribute("value") == str(int(PERCENT.split()[0]))
    page.screenshot(path=OUTPUT / "ui-progress-cancelled.png", full_page=True)
    assert csp_violations(page) == []
    page.close()


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_customers_csv(tmp_path_factory.mktemp("progress") / "customers.csv")


@pytest.fixture
def big_run(stack: Stack, sample_workflow: Workflow, big_csv: Path) -> Iterator[ProgressRun]:
    with progress_run(stack, sample_workflow, big_csv) as running:
        yield running


def test_the_bars_rise_while_a_large_job_runs(big_run: ProgressRun, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(60_000)
    page.add_init_script(f"localStorage.setItem('flowforge.token', {TOKEN!r})")
    where = f'article.job[data-workflow="{big_run.workflow.id}"][data-job="customers"]'
    page.add_init_script(RECORD_BARS.replace("WHERE", where))
    page.goto(f"{big_run.url}/#/jobs")
    job = page.locator(where)
    job.wait_for()
    execution_id = big_run.start()

    def ended() -> bool:
        status = big_run.client.get(f"/api/executions/{execution_id}").json()["status"]
        return status not in ("PENDING", "RUNNING")

    wait_until(ended, 240, "ended")
    expect(job.locator(".latest")).to_contain_text("COMPLETED")
    bars = page.evaluate("window.__bars")
    for layer in ("bronze", "silver"):
        values = [int(v) for v in bars.get(layer, [])]
        rises = [b for a, b in zip(values, values[1:], strict=False) if b > a]
        assert len(rises) >= 3, (layer, values)  # the bar's value rose three times at least
        assert values == sorted(values), (layer, values)
    assert job.locator(".progress").count() == 0  # completed steps show their counts instead
    page.close()
