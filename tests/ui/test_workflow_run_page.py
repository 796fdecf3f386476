"""A whole workflow run from the browser: "Run workflow" on the jobs page opens the run's
graph (jobs -> silver tables -> workflow models) that ends with every node done; a model's
node opens its preview (the oracle's rows) and its lineage; at 1280x800 and a phone's width."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import Stack
from tests.sample_oracle import workflow_models
from tests.ui.conftest import OUTPUT, RECORD_CSP_VIOLATIONS, TOKEN, Api, csp_violations
from tests.ui.test_job_page import assert_fits


def test_run_a_workflow_and_read_its_graph(
    api: Api, stack: Stack, sample_workflow: Workflow, browser: Browser
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    expected = workflow_models()
    OUTPUT.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(60_000)
    page.add_init_script(f"localStorage.setItem('flowforge.token', {TOKEN!r})")
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{api.url}/#/jobs")
    section = page.locator(f'section.workflow[data-workflow="{workflow.id}"]')
    section.get_by_role(
        "button", name=f"Run workflow {workflow.id}: every job, then its models"
    ).click()
    page.wait_for_url("**/#/workflow-executions/*")
    graph = page.locator("svg.workflow-graph")
    graph.wait_for()
    for job in workflow.jobs:  # every job and its silver table is a node
        assert graph.locator(f'[data-node="job:{job.id}"]').count() == 1
        assert graph.locator(f'[data-node="silver:{job.id}"]').count() == 1
    for name, rows in expected.items():
        node = graph.locator(f'[data-node="model:{name}"]')
        expect(node).to_have_attribute("data-status", "BUILT", timeout=240_000)
        assert f"BUILT · {len(rows):,} rows" in (node.text_content() or "")
    for job in workflow.jobs:
        expect(graph.locator(f'[data-node="silver:{job.id}"]')).to_have_attribute(
            "data-status", "COMPLETED"
        )
    expect(page.locator(".summary .badge").first).to_have_text("COMPLETED", timeout=30_000)

    graph.locator('[data-node="model:customer_lifetime"]').click()
    preview = page.locator('.model-detail .preview[data-model="customer_lifetime"] tbody tr')
    preview.first.wait_for()
    shown = len(expected["customer_lifetime"][:20])
    assert preview.count() == shown
    first_ids = [r.locator("td").first.inner_text() for r in preview.all()]
    assert first_ids == [str(r["customer_id"]) for r in expected["customer_lifetime"][:20]]
    lineage = page.locator(".model-detail table", has_text="silver.orders")
    assert "silver.customers" in lineage.inner_text()
    # The keyboard reaches a model's node too.
    node = graph.locator('[data-node="model:best_sellers_by_category"]')
    node.focus()
    page.keyboard.press("Enter")
    page.locator('.model-detail .preview[data-model="best_sellers_by_category"]').wait_for()
    page.screenshot(path=OUTPUT / "ui-workflow-run.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert_fits(page)
    page.screenshot(path=OUTPUT / "ui-workflow-run-390.png", full_page=True)
    assert errors == []
    assert csp_violations(page) == []
