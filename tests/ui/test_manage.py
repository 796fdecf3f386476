"""Managing from the web UI in real headless Chromium against the real stack: a job's
schedule with its next run time (as the cron gives it in its zone) paused and resumed in
Prefect, its upload trigger in words; deleting a landing file, a dimension and a workflow,
each after a confirmation that Cancel and Escape refuse; at 1280x800 and 390 px."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from flowforge.dimensions import upload_dimension
from flowforge.layout import JobKey, landing_prefix
from orchestrator.workflows import Workflow
from tests.api.conftest import sample_yaml
from tests.orchestrator.conftest import ROOT, Stack
from tests.ui.conftest import OUTPUT, RECORD_CSP_VIOLATIONS, TOKEN, Api, csp_violations
from tests.ui.test_job_page import assert_fits

BERLIN = ZoneInfo("Europe/Berlin")
BROWSER_ZONE = "America/New_York"  # not the schedule's: its time is shown in its own zone
CUSTOMERS = ROOT / "examples" / "data" / "customers.csv"


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(timezone_id=BROWSER_ZONE, viewport={"width": 1280, "height": 800})
    context.add_init_script(f"localStorage.setItem('flowforge.token', {TOKEN!r})")
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    context.set_default_timeout(60_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page whose errors (and CSP violations) fail the test."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert errors == []
    assert csp_violations(page) == []


def apply(api: Api, sample: Workflow, customers: dict[str, Any]) -> str:
    """The sample workflow under a fresh id, `customers` changed, applied through the API."""
    document = yaml.safe_load(sample_yaml(sample))
    document["id"] = f"ui-{uuid.uuid4().hex[:8]}"
    for job in document["jobs"]:
        if job["id"] == "customers":
            job |= customers
    response = api.client.post(
        "/api/workflows",
        content=yaml.safe_dump(document),
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 200, response.text
    return str(document["id"])


def job_of(api: Api, workflow_id: str) -> dict[str, Any]:
    answer = api.client.get(f"/api/workflows/{workflow_id}/jobs/customers")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def next_six_in_berlin(now: datetime) -> datetime:
    """The oracle for cron "0 6 * * *" in Europe/Berlin: the next 06:00 there after now."""
    local = now.astimezone(BERLIN)
    today = datetime.combine(local.date(), time(6), BERLIN)
    tomorrow = datetime.combine(local.date() + timedelta(days=1), time(6), BERLIN)
    return today if today > local else tomorrow


def confirm_dialog(page: Page, title: str) -> Locator:
    """The open confirmation: modal, titled, Cancel focused."""
    dialog = page.get_by_role("dialog", name=title)
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    return dialog


def test_a_schedule_shows_its_next_run_and_pauses_in_prefect(
    api: Api, sample_workflow: Workflow, page: Page
) -> None:
    schedule = {"cron": "0 6 * * *", "timezone": "Europe/Berlin"}
    trigger = {"on_upload": True, "debounce_seconds": 3600}  # pending throughout the test
    workflow_id = apply(api, sample_workflow, {"schedule": schedule, "trigger": trigger})
    expected = next_six_in_berlin(datetime.now(UTC))
    shown = job_of(api, workflow_id)["schedule"]
    assert datetime.fromisoformat(shown["next_run_at"]) == expected  # the API agrees

    page.goto(f"{api.url}/#/jobs")
    row = page.locator(f'article.job[data-workflow="{workflow_id}"][data-job="customers"]')
    automation = row.locator(".automation")
    expect(automation.locator(".schedule")).to_contain_text("Schedule 0 6 * * *")
    next_run = automation.locator(".schedule time")
    expect(next_run).to_have_text(expected.strftime("%Y-%m-%d 06:00"))
    assert datetime.fromisoformat(next_run.get_attribute("datetime") or "") == expected
    expect(automation.locator(".schedule")).to_contain_text("next run ")
    expect(automation.locator(".schedule")).to_contain_text("(Europe/Berlin)")
    expect(automation.locator(".trigger")).to_have_text(
        "Starts on upload, 3,600 s after the last file"
    )

    # An upload makes the trigger pending: it says when it starts (the browser's clock).
    row.locator('input[type="file"]').set_input_files(CUSTOMERS)
    row.get_by_role("button", name="Upload").click()
    expect(automation.locator(".trigger")).to_have_attribute("data-pending", "true")
    due = datetime.fromisoformat(job_of(api, workflow_id)["trigger"]["due_at"])
    at = due.astimezone(ZoneInfo(BROWSER_ZONE)).strftime("%H:%M:%S")
    expect(automation.locator(".trigger")).to_have_text(
        f"Upload trigger: starts at {at} after 1 file(s)"
    )

    # Pause on the jobs page: the schedule says so in words, the API (Prefect) agrees.
    automation.get_by_role("button", name="Pause the schedule of customers").click()
    expect(automation.locator(".schedule")).to_have_attribute("data-paused", "true")
    expect(automation.locator(".schedule-state")).to_have_text("paused")
    assert automation.locator(".schedule time").count() == 0
    paused = job_of(api, workflow_id)["schedule"]
    assert paused["paused"] is True and paused["next_run_at"] is None and paused["registered"]
    row.screenshot(path=OUTPUT / "ui-schedule-paused.png")

    # Resume on the job's page: the next run is back.
    page.goto(f"{api.url}/#/jobs/{workflow_id}/customers")
    panel = page.locator(".job-manage .automation")
    expect(panel.locator(".schedule-state")).to_have_text("paused")
    panel.get_by_role("button", name="Resume the schedule of customers").click()
    expect(panel.locator(".schedule time")).to_have_text(expected.strftime("%Y-%m-%d 06:00"))
    expect(panel.get_by_role("button", name="Pause the schedule of customers")).to_be_focused()
    resumed = job_of(api, workflow_id)["schedule"]
    assert resumed["paused"] is False
    assert datetime.fromisoformat(resumed["next_run_at"]) == next_six_in_berlin(datetime.now(UTC))
    page.set_viewport_size({"width": 390, "height": 844})
    assert_fits(page)
    page.screenshot(path=OUTPUT / "ui-job-automation-390.png", full_page=True)
    assert api.client.delete(f"/api/workflows/{workflow_id}?data=true").status_code == 200


def test_a_landing_file_is_deleted_only_when_confirmed(
    api: Api, stack: Stack, sample_workflow: Workflow, page: Page
) -> None:
    workflow = stack.add_workflow(sample_workflow)  # lands customers.csv
    prefix = landing_prefix(JobKey(workflow.id, "customers"))
    stack.object_store.put_bytes(prefix + "extra.csv", b"id\n1\n", content_type="text/csv")

    def listed() -> set[str]:
        files = api.client.get(f"/api/workflows/{workflow.id}/jobs/customers/files").json()
        return {f["name"] for f in files["files"]}

    assert listed() == {"customers.csv", "extra.csv"}
    page.goto(f"{api.url}/#/jobs/{workflow.id}/customers")
    rows = page.locator("table.landing-files tbody tr")
    expect(rows).to_have_count(2)
    delete = page.get_by_role("button", name="Delete landing file extra.csv")
    title = "Delete landing file extra.csv?"

    delete.click()
    dialog = confirm_dialog(page, title)
    expect(dialog).to_contain_text(
        "Its rows stay in bronze until a run with --forget extra.csv or a full refresh."
    )
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(delete).to_be_focused()  # back where the reader was
    assert listed() == {"customers.csv", "extra.csv"}

    delete.click()
    confirm_dialog(page, title)
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert listed() == {"customers.csv", "extra.csv"}

    page.set_viewport_size({"width": 390, "height": 844})
    delete.click()
    dialog = confirm_dialog(page, title)
    assert_fits(page)
    page.screenshot(path=OUTPUT / "ui-confirm-delete-390.png")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator('table.landing-files tr[data-file="extra.csv"]')).to_have_count(0)
    expect(page.get_by_text("Deleted landing file extra.csv.")).to_be_visible()
    assert stack.object_store.head(prefix + "extra.csv") is None
    assert stack.object_store.head(prefix + "customers.csv") is not None
    assert listed() == {"customers.csv"}


def test_a_dimension_a_workflow_lists_is_kept(
    api: Api, stack: Stack, sample_workflow: Workflow, page: Page
) -> None:
    used, unused = (f"dim_{uuid.uuid4().hex[:8]}" for _ in range(2))
    for name in (used, unused):
        upload_dimension(stack.object_store, name, b"code,name\nDE,Germany\n", "countries.csv")
    workflow = stack.add_workflow(sample_workflow, dimensions=[used])

    page.goto(f"{api.url}/#/jobs")
    page.get_by_role("link", name="Dimensions").click()
    expect(page.get_by_role("link", name="Dimensions")).to_have_attribute("aria-current", "")
    row = page.locator(f'table.dimensions tr[data-dimension="{used}"]')
    expect(row.locator('td[data-label="rows"]')).to_have_text("1")
    row.get_by_role("button", name=f"Delete dimension {used}").click()
    confirm_dialog(page, f"Delete dimension {used}?").get_by_role("button", name="Delete").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(workflow.id)
    refused = api.client.delete(f"/api/dimensions/{used}")  # refused again: nothing changes
    assert refused.status_code == 409
    expect(alert).to_have_text(refused.json()["error"]["message"])
    expect(row).to_be_visible()
    assert used in {d["name"] for d in api.client.get("/api/dimensions").json()}

    # One no workflow lists goes, from the page and the API.
    page.get_by_role("button", name=f"Delete dimension {unused}").click()
    confirm_dialog(page, f"Delete dimension {unused}?").get_by_role("button", name="Delete").click()
    expect(page.locator(f'table.dimensions tr[data-dimension="{unused}"]')).to_have_count(0)
    assert unused not in {d["name"] for d in api.client.get("/api/dimensions").json()}
    page.set_viewport_size({"width": 390, "height": 844})
    assert_fits(page)
    page.screenshot(path=OUTPUT / "ui-dimensions-390.png", full_page=True)


def test_a_workflow_is_deleted_with_its_data(
    api: Api, stack: Stack, sample_workflow: Workflow, page: Page
) -> None:
    workflow = stack.add_workflow(sample_workflow)  # its CSVs landed
    landing = f"landing/{workflow.id}/"
    assert next(stack.object_store.list(landing), None) is not None
    page.goto(f"{api.url}/#/jobs")
    section = page.locator(f'section.workflow[data-workflow="{workflow.id}"]')
    # A job with no schedule and no trigger says nothing about them.
    expect(section.locator('article.job[data-job="customers"] .status')).to_have_text("Never run.")
    assert section.locator('article.job[data-job="customers"] .automation').inner_text() == ""
    delete = section.get_by_role("button", name=f"Delete workflow {workflow.id}")
    delete.click()
    dialog = confirm_dialog(page, f"Delete workflow {workflow.id}?")
    dialog.get_by_role("button", name="Cancel").click()
    assert api.client.get(f"/api/workflows/{workflow.id}").status_code == 200

    delete.click()
    dialog = confirm_dialog(page, f"Delete workflow {workflow.id}?")
    expect(dialog).to_contain_text("executions")
    dialog.get_by_label("Also delete its data").check()
    page.screenshot(path=OUTPUT / "ui-delete-workflow.png")
    dialog.get_by_role("button", name="Delete").click()
    expect(section).to_have_count(0)
    expect(page.get_by_text(f"Deleted workflow {workflow.id}.")).to_be_visible()
    assert api.client.get(f"/api/workflows/{workflow.id}").status_code == 404
    assert next(stack.object_store.list(landing), None) is None
    assert_fits(page)


def test_a_workflow_schedule_shows_beside_its_title_and_pauses(
    api: Api, sample_workflow: Workflow, page: Page
) -> None:
    document = yaml.safe_load(sample_yaml(sample_workflow))
    document["id"] = workflow_id = f"ui-{uuid.uuid4().hex[:8]}"
    document["schedule"] = {"cron": "0 6 * * *", "timezone": "Europe/Berlin"}
    applied = api.client.post(
        "/api/workflows",
        content=yaml.safe_dump(document),
        headers={"Content-Type": "application/yaml"},
    )
    assert applied.status_code == 200, applied.text
    expected = next_six_in_berlin(datetime.now(UTC))

    page.goto(f"{api.url}/#/jobs")
    section = page.locator(f'section.workflow[data-workflow="{workflow_id}"]')
    shown = section.locator(".workflow-schedule .schedule")
    expect(shown).to_contain_text("Workflow schedule 0 6 * * *")
    expect(shown.locator("time")).to_have_text(expected.strftime("%Y-%m-%d 06:00"))
    section.get_by_role("button", name=f"Pause the schedule of workflow {workflow_id}").click()
    expect(shown).to_have_attribute("data-paused", "true")
    detail = api.client.get(f"/api/workflows/{workflow_id}").json()
    assert detail["schedule"]["paused"] is True
    section.get_by_role("button", name=f"Resume the schedule of workflow {workflow_id}").click()
    expect(shown).to_have_attribute("data-paused", "false")
    assert api.client.get(f"/api/workflows/{workflow_id}").json()["schedule"]["paused"] is False
