"""The two web UIs `flowforge up` prints, in real headless Chromium: after one sample job
ran, the Prefect UI (at the printed address, talking to its real API, not port 4200)
lists its flow run, and the FlowForge UI shows the job completed and its page. Ctrl-C then
leaves nothing running."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.orchestrator.upstack import UpProcess
from tests.sample_oracle import EXPECTED
from tests.ui.conftest import OUTPUT, RECORD_CSP_VIOLATIONS, csp_violations


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpProcess, dict[str, Any]]]:
    """`flowforge up` with the sample, and one run of its customers job (ended)."""
    process = UpProcess(tmp_path_factory.mktemp("up-ui"))
    try:
        process.wait_ready()
        ui = process.address("FlowForge UI")
        trigger = f"{ui}/api/workflows/customer-data/jobs/customers/executions"
        execution = httpx.post(trigger, json={}, timeout=60).json()
        deadline = time.monotonic() + 180
        while execution["status"] in ("PENDING", "RUNNING"):
            assert time.monotonic() < deadline, execution
            time.sleep(0.5)
            execution = httpx.get(f"{ui}/api/executions/{execution['id']}", timeout=60).json()
        assert execution["status"] == "COMPLETED", execution
        yield process, execution
    finally:
        code = process.stop(signal.SIGINT)
    assert code == 0, process.printed
    assert process.leftovers() == []


def test_the_printed_prefect_ui_lists_the_sample_run(
    up: tuple[UpProcess, dict[str, Any]], browser: Browser
) -> None:
    process, execution = up
    prefect_api = process.address("Prefect API")
    run = httpx.get(f"{prefect_api}/flow_runs/{execution['flow_run_id']}", timeout=30).json()
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(60_000)
    page.goto(f"{process.address('Prefect UI')}/runs")
    expect(page.get_by_text(run["name"], exact=True).first).to_be_visible()
    expect(page.get_by_text("Completed").first).to_be_visible()
    assert page.get_by_text("Can't connect to Server API").count() == 0
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=OUTPUT / "up-prefect-ui.png")
    page.close()


def test_the_printed_flowforge_ui_shows_the_run(
    up: tuple[UpProcess, dict[str, Any]], browser: Browser
) -> None:
    process, execution = up
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(60_000)
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    page.goto(process.address("FlowForge UI"))  # the jobs page, no token needed locally
    job = page.locator('article.job[data-workflow="customer-data"][data-job="customers"]')
    expect(job.locator(".latest .badge")).to_have_text("COMPLETED")
    assert execution["id"] in job.locator(".latest").inner_text()
    gold = job.locator('.step[data-layer="gold"] dd').first
    assert gold.inner_text() == f"{EXPECTED['customers']['gold'][0]:,}"  # gold's rows in
    job.get_by_role("link", name="customers", exact=True).click()
    page.locator('figure[data-chart="Duration per layer"]').wait_for()
    assert page.locator(".runs-table tbody tr").count() == 1
    page.screenshot(path=OUTPUT / "up-flowforge-ui.png", full_page=True)
    assert csp_violations(page) == []
    page.close()
