"""A job's page in real headless Chromium: its last executions as charts (duration per layer,
rows in and out, reject and quarantine rates, schema drift marked) and the quality
scorecard, checked against the generator that wrote those executions, at 1280x800 and at
a phone's 390 px, with text alternatives and more than colour telling series apart."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page

from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import Stack
from tests.ui.conftest import OUTPUT, RECORD_CSP_VIOLATIONS, TOKEN, Api, csp_violations
from tests.ui.history import LAYERS, RULES, Run, generate, record

RUNS = 32


@pytest.fixture(scope="module")
def history(stack: Stack, sample_workflow: Workflow) -> tuple[Workflow, list[Run]]:
    workflow = stack.add_workflow(sample_workflow)
    runs = generate(RUNS)
    record(stack.store, workflow.id, "customers", runs)
    return workflow, runs


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """Times shown in UTC, as the generator wrote them; the token saved."""
    context = browser.new_context(timezone_id="UTC", viewport={"width": 1280, "height": 800})
    context.add_init_script(f"localStorage.setItem('flowforge.token', {TOKEN!r})")
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    context.set_default_timeout(60_000)
    try:
        yield context
    finally:
        context.close()


def numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"-?[\d,]*\.?\d+", text)]


def chart_table(figure: Locator) -> list[tuple[str, list[float]]]:
    """The chart's own data table (its text alternative): (run label, values) per row."""
    figure.locator("details > summary").click()
    rows = figure.locator("details tbody tr")
    return [
        (r.locator("th").inner_text(), [numbers(t)[0] for t in r.locator("td").all_inner_texts()])
        for r in rows.all()
    ]


def assert_close(shown: list[float], expected: list[float], tolerance: float) -> None:
    assert len(shown) == len(expected)
    assert all(abs(a - b) <= tolerance for a, b in zip(shown, expected, strict=True)), (
        shown,
        expected,
    )


def test_the_job_page_draws_the_last_runs(
    api: Api, history: tuple[Workflow, list[Run]], context: BrowserContext
) -> None:
    workflow, runs = history
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{api.url}/#/jobs")
    job = page.locator(f'article.job[data-workflow="{workflow.id}"][data-job="customers"]')
    job.get_by_role("link", name="customers", exact=True).click()  # the job's name
    assert page.url.endswith(f"#/jobs/{workflow.id}/customers")
    labels = [r.created.strftime("%m-%d %H:%M:%S") for r in runs]  # oldest first

    durations = page.locator('figure[data-chart="Duration per layer"]')
    durations.wait_for()
    svg = durations.locator("svg[role=img]")
    assert svg.locator("title").first.text_content() == "Duration per layer"
    assert f"last {RUNS} runs" in (svg.locator("desc").text_content() or "")
    shown = chart_table(durations)
    assert [label for label, _ in shown] == labels
    for (_, seconds), run in zip(shown, runs, strict=True):
        assert_close(seconds, [run.seconds[layer] for layer in LAYERS], 0.006)
    # Each run's row links to its execution.
    first = durations.locator("details tbody tr").first.get_by_role("link")
    assert first.get_attribute("href") == f"#/executions/{runs[0].id}"

    rows = page.locator('figure[data-chart="Rows in and out"]')
    for (_, counts), run in zip(chart_table(rows), runs, strict=True):
        assert counts == [run.bronze[0], run.bronze[1], run.silver[1]]

    rates = page.locator('figure[data-chart="Quarantine and reject rate"]')
    for (_, percents), run in zip(chart_table(rates), runs, strict=True):
        assert_close(percents, [run.reject_percent, run.quarantine_percent], 0.006)
    # Schema drift is marked where it happened, on both charts over runs, and listed.
    drifted = [i for i, run in enumerate(runs) if run.drift]
    for figure in (rows, rates):
        marks = figure.locator("g.mark").evaluate_all("ns => ns.map(n => +n.dataset.mark)")
        assert marks == drifted
    listed = page.locator(".drift-events li").evaluate_all("ns => ns.map(n => n.dataset.execution)")
    assert listed == [runs[i].id for i in reversed(drifted)]
    assert "silver added loyalty_tier" in page.locator(".drift-events").inner_text()

    # Colour is not the only signal: each series has its own dash and marker shape.
    series = rows.locator("g.series")
    looks = series.evaluate_all(
        "gs => gs.map(g => [g.querySelector('path').getAttribute('stroke-dasharray'),"
        " g.querySelector('.point > :not(title)').outerHTML.split(' ')[0]])"
    )
    assert len({tuple(x) for x in looks}) == len(looks) == 3, looks

    # The scorecard: every rule, the worst failure rate across the runs first.
    def overall(rule_id: str) -> float:
        failed = sum(r.failed[rule_id] for r in runs)
        return 100 * failed / sum(r.silver[0] for r in runs)

    expected = sorted((rule_id for rule_id, *_ in RULES), key=lambda r: -overall(r))
    card = page.locator("table.scorecard tbody tr")
    assert card.evaluate_all("ns => ns.map(n => n.dataset.rule)") == expected
    for row, rule_id in zip(card.all(), expected, strict=True):
        assert_close(numbers(row.locator("td").nth(2).inner_text())[:1], [overall(rule_id)], 0.006)
        trend = row.locator("svg.sparkline").get_attribute("aria-label") or ""
        per_run = [100 * r.failed[rule_id] / r.silver[0] for r in runs]
        assert_close(numbers(trend.split(":", 1)[1]), per_run, 0.006)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=OUTPUT / "ui-job-1280.png", full_page=True)
    assert errors == []
    assert csp_violations(page) == []


def test_the_job_page_fits_a_phone(
    api: Api, history: tuple[Workflow, list[Run]], browser: Browser
) -> None:
    workflow, runs = history
    context = browser.new_context(
        timezone_id="UTC", viewport={"width": 390, "height": 844}, is_mobile=True
    )
    context.add_init_script(f"localStorage.setItem('flowforge.token', {TOKEN!r})")
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    context.set_default_timeout(60_000)
    try:
        page = context.new_page()
        page.goto(f"{api.url}/#/jobs/{workflow.id}/customers")
        page.locator('figure[data-chart="Quarantine and reject rate"]').wait_for()
        assert_fits(page)
        sides = page.locator("figure.chart svg.chart-svg").evaluate_all(
            "ns => ns.map(n => [n.getBoundingClientRect().left, n.getBoundingClientRect().right])"
        )
        assert len(sides) == 3 and all(0 <= left < right <= 390 for left, right in sides), sides
        # The scorecard's rows read as cards, each value with its label.
        first = page.locator("table.scorecard tbody tr").first
        assert first.locator('td[data-label="failure rate"]').is_visible()
        assert page.locator(".runs-table tbody tr").count() == len(runs)
        page.screenshot(path=OUTPUT / "ui-job-390.png", full_page=True)
        assert csp_violations(page) == []
    finally:
        context.close()


def assert_fits(page: Page) -> None:
    """Nothing wider than the screen: no sideways scrolling of the page itself."""
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page is {width} px wide on a {inner} px screen"
