"""The web UI in real headless Chromium against the real stack: upload a job's CSV and run
it from the jobs page, watch bronze run and bronze, silver and gold complete, read the
execution page (a gold model's chart beside its table), at 1280x800 and at a phone's width."""

from __future__ import annotations

import duckdb
import polars as pl
from playwright.sync_api import Browser, Locator, expect

from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import ROOT, Stack
from tests.sample_oracle import EXPECTED, WORKFLOW, jobs, silver
from tests.ui.conftest import OUTPUT, RECORD_CSP_VIOLATIONS, TOKEN, Api, csp_violations
from tests.ui.test_job_page import assert_fits

# What the sample customers CSV gives (tests/sample_oracle.py): in, out, rejected, as shown.
CUSTOMERS = {
    layer: tuple(f"{n:,}" for n in counts) for layer, counts in EXPECTED["customers"].items()
}
BRONZE_IN, BRONZE_OUT, BRONZE_REJECTED = EXPECTED["customers"]["bronze"]
GOLD_IN, GOLD_OUT, _ = EXPECTED["customers"]["gold"]


def model_result(job_id: str, model: str) -> list[tuple[str, ...]]:
    """The model's rows from its own SQL in DuckDB over the oracle's silver rows, as text."""
    sql_file = next(m["sql_file"] for m in jobs()[job_id]["gold"]["models"] if m["name"] == model)
    con = duckdb.connect()
    con.register("silver", pl.DataFrame(silver(job_id)[0], infer_schema_length=None))
    rows = con.execute((WORKFLOW.parent / sql_file).read_text(encoding="utf-8")).fetchall()
    return [tuple(str(v) for v in row) for row in rows]


def step_counts(step: Locator) -> tuple[str, str, str]:
    values = step.locator("dd").all_inner_texts()
    return values[0], values[1], values[2]


def test_run_a_job_and_read_its_execution(
    api: Api, stack: Stack, sample_workflow: Workflow, browser: Browser
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    # The job's landing is empty: what the run reads is what the page uploads.
    landing = f"landing/{workflow.id}/customers/"
    stack.object_store.delete_prefix(landing)
    csv = ROOT / "examples/data/customers.csv"
    OUTPUT.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(60_000)  # a loaded CI machine: Prefect and the services share it
    page.add_init_script(f"localStorage.setItem('flowforge.token', {TOKEN!r})")
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{api.url}/#/jobs")
    job = page.locator(f'article.job[data-workflow="{workflow.id}"][data-job="customers"]')
    job.wait_for()
    assert job.locator(".status").inner_text() == "Never run."
    job.locator('input[type="file"]').set_input_files(csv)
    job.get_by_role("button", name="Upload").click()
    job.get_by_text("Uploaded customers.csv.").wait_for()
    landed = [(o.key, o.size) for o in stack.object_store.list(landing)]
    assert landed == [(landing + "customers.csv", csv.stat().st_size)]

    # Bronze stopped, the run waits in its retries (about 8 s) with bronze RUNNING: the page
    # shows that, then bronze is back and the run goes on. Without the stop, bronze takes
    # about a second, which the page may or may not catch between two refreshes.
    stack.servers["bronze"].stop(0)
    try:
        job.get_by_role("button", name="Run").click()
        job.locator('.step[data-layer="bronze"][data-status="RUNNING"]').wait_for(timeout=30_000)
        assert job.get_by_role("button", name="Run").is_disabled()  # one run at a time
        assert job.locator('.step[data-layer="gold"]').get_attribute("data-status") == "PENDING"
    finally:
        stack.restart("bronze")
    for layer in ("bronze", "silver", "gold"):
        step = job.locator(f'.step[data-layer="{layer}"][data-status="COMPLETED"]')
        step.wait_for(timeout=90_000)
        assert step_counts(step) == CUSTOMERS[layer], layer
    # The execution ends a moment after its last step (the balance sheet is checked first).
    expect(job.locator(".latest .badge")).to_have_text("COMPLETED", timeout=30_000)
    page.screenshot(path=OUTPUT / "ui-jobs.png", full_page=True)

    job.locator(".latest a").click()
    steps = page.locator(".steps-table tbody tr")
    steps.first.wait_for()
    rows = {r.locator("th").inner_text(): r.locator("td").all_inner_texts() for r in steps.all()}
    for layer, (rows_in, rows_out, rejected) in CUSTOMERS.items():
        assert rows[layer][:4] == ["COMPLETED", rows_in, rows_out, rejected], layer
    quality = page.locator("section", has=page.get_by_role("heading", name="Quality report"))
    assert "rejected: wrong_field_count" in quality.inner_text()
    assert "cast_lifetime_value" in quality.inner_text()  # the silver rules table
    balance = page.locator("section", has=page.get_by_role("heading", name="Balance sheet"))
    assert "balanced" in balance.inner_text()
    preview = page.locator('.preview[data-model="customers_by_country"] tbody tr')
    preview.first.wait_for()
    assert preview.count() >= 5
    # Every committed gold model has a preview; the built-in profile comes last, folded.
    models = page.locator(".previews .preview").evaluate_all("ns => ns.map(n => n.dataset.model)")
    assert {"customers_by_country", "signups_per_month", "data_quality"} <= set(models)
    assert models[-1] == "profile", models
    # A month column and numbers: a line chart beside the table, its data the model's.
    signups = page.locator('.preview[data-model="signups_per_month"]')
    chart = signups.locator("figure.chart")
    assert chart.locator("svg[role=img]").get_attribute("data-chart") == "line"
    assert (chart.locator("svg title").first.text_content() or "").startswith("signups_per_month")
    chart.locator("details > summary").click()
    drawn = [tuple(r.locator("th, td").all_inner_texts()) for r in chart.locator("tbody tr").all()]
    assert drawn == model_result("customers", "signups_per_month")
    toggle = signups.locator("button.chart-toggle")
    assert toggle.get_attribute("aria-pressed") == "true"
    signups.get_by_role("button", name="Chart: shown").click()
    expect(toggle).to_have_text("Chart: hidden")
    assert chart.is_hidden() and toggle.get_attribute("aria-pressed") == "false"
    toggle.click()
    assert chart.is_visible()
    # Three text columns: no chart fits, the table stands alone.
    assert page.locator('.preview[data-model="customers_by_country"] figure').count() == 0
    profile = page.locator('details.preview[data-model="profile"]')
    assert profile.get_attribute("open") is None
    assert not profile.locator("table").is_visible()
    profile.locator("summary").click()
    assert profile.locator("thead th").first.inner_text() == "column_name"
    assert profile.locator("tbody tr").count() >= 5
    quarantine = page.locator("section", has=page.get_by_role("heading", name="Quarantine preview"))
    quarantine.locator("tbody tr").first.wait_for()
    # The Prefect logs of this run's flow run: the flow's line for each layer.
    logs = page.locator(".log-table")
    logs.get_by_text(
        f"bronze: {BRONZE_IN} rows in, {BRONZE_OUT} out, {BRONZE_REJECTED} rejected, "
        f"committed bronze/{workflow.id}/"
    ).wait_for(timeout=60_000)
    logs.get_by_text(f"gold: {GOLD_IN} rows in, {GOLD_OUT} out").wait_for(timeout=60_000)
    # Until the API says the logs are complete, the panel says more may arrive; once the
    # note is gone, the last lines are there: each layer's task ended, then the flow.
    expect(page.locator("[data-more]")).to_have_count(0, timeout=60_000)
    finished = logs.get_by_text("Finished in state Completed()", exact=True)
    assert finished.count() == len(CUSTOMERS) + 1
    page.screenshot(path=OUTPUT / "ui-execution.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    assert_fits(page)
    page.screenshot(path=OUTPUT / "ui-execution-390.png", full_page=True)
    page.goto(f"{api.url}/#/jobs")
    job.locator(".latest .badge").wait_for()
    assert_fits(page)
    page.screenshot(path=OUTPUT / "ui-jobs-390.png", full_page=True)
    assert errors == []
    assert csp_violations(page) == []


def test_the_token_field_unlocks_an_api_that_needs_one(api: Api, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(60_000)
    page.goto(f"{api.url}/#/jobs")
    refused = page.get_by_role("alert")
    refused.wait_for()
    assert "Unauthorized" in refused.inner_text()
    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Save").click()
    page.locator("article.job").first.wait_for()
    assert page.get_by_role("alert").count() == 0
    assert page.evaluate("localStorage.getItem('flowforge.token')") == TOKEN
    # A locator, not wait_for_function: the API's policy refuses the eval() that uses.
    expect(page.locator("#live")).to_have_text("live")
    page.close()
