"""The two web UIs `flowforge up` prints, in real headless Chromium: after one sample job
ran, the Prefect UI (at the printed address, talking to its real API, not port 4200)
lists its flow run, and the FlowForge UI shows the job completed and its page. Ctrl-C then
leaves nothing running."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import duckdb
import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.orchestrator.upstack import UpProcess
from tests.outside import duckdb_extensions
from tests.sample_oracle import EXPECTED, gold, silver
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


def test_the_printed_duckdb_snippet_reads_the_gold_tables_as_the_analyst(
    up: tuple[UpProcess, dict[str, Any]],
) -> None:
    """What up prints under "Read the gold tables in DuckDB", run as it is (the extensions
    loaded by path instead of INSTALL, which would download them): the customers job's
    tables give the oracle's rows; the analyst's keys read nothing outside silver/ and gold/."""
    process, _ = up
    printed = process.printed.split("Read the gold tables in DuckDB", 1)[1].splitlines()[1:]
    snippet = [line for line in printed if line.startswith(("INSTALL", "CREATE SECRET", "SELECT"))]
    assert snippet[0] == "INSTALL httpfs; LOAD httpfs; INSTALL delta; LOAD delta;"
    assert snippet[1].startswith("CREATE SECRET")
    stack_env = dict(
        line.split("=", 1) for line in (process.state / "stack.env").read_text().splitlines()
    )
    assert stack_env["FLOWFORGE_S3_SECRET_ACCESS_KEY"] not in process.printed
    assert stack_env["FLOWFORGE_S3_ANALYST_SECRET_ACCESS_KEY"] in snippet[1]
    con = duckdb_extensions()
    con.execute(snippet[1])
    selects = {re.search(r"/gold/customer-data/(.+)'\)", s).group(1): s for s in snippet[2:]}  # type: ignore[union-attr]
    rows, _ = silver("customers")
    for model, count in gold("customers", rows):
        assert len(con.sql(selects.pop(f"customers/{model}")).fetchall()) == count, model
    assert {s.split("/")[0] for s in selects} == {"orders", "products", "_workflow"}
    bucket = stack_env["FLOWFORGE_S3_BUCKET"]
    for outside in (f"s3://{bucket}/landing/customer-data/customers/customers.csv",):
        with pytest.raises(duckdb.Error, match="403|Forbidden|Access"):
            con.sql(f"SELECT * FROM read_csv('{outside}')").fetchall()
    with pytest.raises(duckdb.Error, match="403|Forbidden|Access"):
        con.execute(f"COPY (SELECT 1 AS x) TO 's3://{bucket}/gold/customer-data/x.parquet'")
