"""The execution page in headless Chromium says which table version each step committed
and read, and which version a preview is: the execution's own, since replaced."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from orchestrator.api.app import create_app
from orchestrator.store import ExecutionStatus, StepStatus, Store, TableVersion
from orchestrator.store.database import open_engine
from orchestrator.workflows import Workflow
from tests.api.conftest import ApiServer
from tests.delta import commit
from tests.orchestrator.conftest import workflow_named


@pytest.fixture
def site(
    settings: Settings, store: ObjectStore, tmp_path: Path, sample_workflow: Workflow
) -> Iterator[tuple[str, Store, Workflow]]:
    database = Store(open_engine(f"sqlite:///{tmp_path / 'ff.db'}"))
    workflow = workflow_named(sample_workflow, f"ui-{uuid.uuid4().hex[:8]}")
    database.save_workflow(workflow)
    with ApiServer(create_app(settings, store=database, objects=store)) as url:
        yield url, database, workflow
    database.close()


def test_the_page_names_the_versions(
    settings: Settings, site: tuple[str, Store, Workflow], browser: Browser
) -> None:
    url, database, workflow = site
    job = JobKey(workflow.id, "customers")
    model = TableRef.gold_model(job, "customers_by_country")
    execution = database.create_execution(workflow.id, job.job_id, ["gold"])
    database.start_execution(execution.id)
    database.start_step(execution.id, "gold", run_id=execution.id)
    own = commit(settings, model, {"country": ["DE", "FR"]}, execution.id, mode="overwrite")
    versions = [
        TableVersion("model", model.path, own, "customers_by_country"),
        TableVersion("input", TableRef.silver(job).path, 6),
    ]
    database.finish_step(execution.id, "gold", StepStatus.COMPLETED, tables=versions)
    database.finish_execution(execution.id, ExecutionStatus.COMPLETED)
    later = commit(settings, model, {"country": ["NL"]}, "a-later-run", mode="overwrite")

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}/#/executions/{execution.id}")
    cell = page.locator('tr[data-layer="gold"] td.versions')
    cell.locator('li[data-role="model"]').wait_for()
    assert cell.inner_text().split("\n") == [f"{model} v{own}", f"read silver/{job} v6"]
    preview = page.locator('.preview[data-model="customers_by_country"]')
    note = preview.locator(f'[data-version="{own}"]')
    note.wait_for()
    assert note.inner_text() == (
        f"{model} version {own}: this execution's; the table has changed since "
        f"(latest version {later})."
    )
    assert sorted(preview.locator("tbody td").all_inner_texts()) == ["DE", "FR"]
    assert errors == []
    page.close()
