"""A running step's progress bar in real headless Chromium: percent, rows and time left on
the jobs page and the execution page; cancelled, the bar stops and says so.

The executions store does not record progress yet (a later change adds the column and the
layers' reports): until then Step.progress is null in every answer, and this test adds a
layer's report to the API's answers about one RUNNING execution on their way to the page
(Playwright's route), everything else real. Once the store records it, write the report
through the store instead."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from orchestrator.liveness import beating
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import Stack
from tests.ui.conftest import OUTPUT, RECORD_CSP_VIOLATIONS, TOKEN, Api, csp_violations

REPORT = {  # what bronze would report a while into a large file
    "phase": "reading",
    "fraction": 0.4237,
    "rows": 123_456,
    "bytes_read": 42_370_000,
    "bytes_total": 100_000_000,
    "files_done": 1,
    "files_total": 3,
    "models_done": None,
    "models_total": None,
    "eta_seconds": 75.0,
    "updated_at": datetime.now(UTC).isoformat(),
}
PERCENT = f"{int(REPORT['fraction'] * 100)} %"  # type: ignore[operator]
ROWS = f"{REPORT['rows']:,} rows"
LEFT = "about 1 min 15 s left"  # 75 s
FILES = f"{REPORT['files_done']} of {REPORT['files_total']} files"


def with_report(data: Any, execution_id: str) -> Any:
    """The API's answer with REPORT on the bronze step of `execution_id`, wherever it is."""
    if isinstance(data, list):
        return [with_report(item, execution_id) for item in data]
    if isinstance(data, dict):
        if data.get("id") == execution_id and "steps" in data:
            for step in data["steps"]:
                if step["layer"] == "bronze" and step["status"] in ("RUNNING", "FAILED"):
                    assert step["progress"] is None  # the API has the field, the store no value
                    step["progress"] = REPORT
            return data
        return {key: with_report(value, execution_id) for key, value in data.items()}
    return data


@pytest.fixture
def running(stack: Stack, sample_workflow: Workflow) -> Iterator[tuple[Workflow, str]]:
    """A job's execution with bronze RUNNING, beating as a live flow does."""
    workflow = stack.add_workflow(sample_workflow)
    execution = stack.store.create_execution(workflow.id, "customers", ["bronze", "silver", "gold"])
    stack.store.start_execution(execution.id)
    stack.store.start_step(execution.id, "bronze", f"{execution.id}-bronze")
    with beating(stack.store, execution.id, 5):
        yield workflow, execution.id


def reported(page: Page, api: Api, execution_id: str) -> None:
    def route(route: Route) -> None:
        if route.request.method != "GET" or "/api/events" in route.request.url:
            route.continue_()
            return
        answer = route.fetch()
        if "json" not in answer.headers.get("content-type", ""):
            route.fulfill(response=answer)
            return
        route.fulfill(response=answer, json=with_report(json.loads(answer.body()), execution_id))

    page.route(f"{api.url}/api/**", route)


def test_a_running_step_shows_its_progress_and_stops_when_cancelled(
    api: Api, running: tuple[Workflow, str], browser: Browser
) -> None:
    workflow, execution_id = running
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(60_000)
    page.add_init_script(f"localStorage.setItem('flowforge.token', {TOKEN!r})")
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    reported(page, api, execution_id)

    page.goto(f"{api.url}/#/jobs")
    job = page.locator(f'article.job[data-workflow="{workflow.id}"][data-job="customers"]')
    bar = job.locator('.step[data-layer="bronze"] .progress[data-progress="running"]')
    bar.wait_for()
    assert bar.locator("progress").get_attribute("value") == str(int(PERCENT.split()[0]))
    text = bar.inner_text()
    for part in ("reading", PERCENT, ROWS, FILES, LEFT):
        assert part in text, text
    assert bar.get_by_role("progressbar", name="bronze progress").count() == 1
    assert job.locator('.step[data-layer="silver"] .progress').count() == 0  # no report
    OUTPUT.mkdir(exist_ok=True)
    job.screenshot(path=OUTPUT / "ui-progress-jobs.png")

    job.locator(".latest a").click()
    bronze = page.locator('.steps-table tr[data-layer="bronze"]')
    cell = bronze.locator('.progress[data-progress="running"]')
    cell.wait_for()
    assert LEFT in cell.inner_text() and PERCENT in cell.inner_text()
    page.get_by_role("button", name="Cancel").click()
    stopped = bronze.locator('.progress[data-progress="stopped"]')
    expect(stopped).to_contain_text(f"cancelled at {PERCENT}")
    assert ROWS in stopped.inner_text() and "left" not in stopped.inner_text()
    assert stopped.locator("progress").get_attribute("value") == str(int(PERCENT.split()[0]))
    page.screenshot(path=OUTPUT / "ui-progress-cancelled.png", full_page=True)
    assert csp_violations(page) == []
    page.close()
