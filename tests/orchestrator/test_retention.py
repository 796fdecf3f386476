"""Retention through the real stack: landing files bronze ingested (its committed output
says so) and old executions go, and nothing else does. The clock is given (`now`), so a
month passes at once. Each test has a store of its own: retention looks at all of one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from flowforge import tables
from flowforge.errors import NotFound
from flowforge.layout import LAYERS, JobKey, landing_prefix
from flowforge.tables import TableRef
from orchestrator.flow import medallion
from orchestrator.landing import ingested
from orchestrator.retention import apply_retention
from orchestrator.runner import InProcessRunner
from orchestrator.store import ExecutionStatus, Store
from orchestrator.store.database import open_engine
from orchestrator.store.models import StepTableRow, utcnow
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import ROOT, Stack, workflow_named
from tests.orchestrator.test_triggers import parts

DAY = timedelta(days=1)


@pytest.fixture
def own(tmp_path: Path) -> Iterator[Store]:
    store = Store(open_engine(f"sqlite:///{tmp_path / 'flowforge.db'}"))
    yield store
    store.close()


def put(stack: Stack, workflow: Workflow, job: str, name: str, data: bytes) -> str:
    key = landing_prefix(JobKey(workflow.id, job)) + name
    stack.object_store.put_bytes(key, data, content_type="text/csv")
    return key


def run(stack: Stack, store: Store, workflow: Workflow, job: str, **options: Any) -> str:
    result = InProcessRunner(stack.settings, store).run(
        medallion, workflow_id=workflow.id, job_id=job, **options
    )
    execution = store.get_execution(result["execution_id"])
    assert execution.status == "COMPLETED", execution.error
    return execution.id


def landing(stack: Stack) -> set[str]:
    return {o.key for o in stack.object_store.list("landing/")}


def test_landing_retention_removes_old_ingested_files_and_nothing_else(
    stack: Stack, own: Store, sample_workflow: Workflow
) -> None:
    kept = workflow_named(sample_workflow, f"rk-{uuid.uuid4().hex[:8]}")  # no retention
    workflow = workflow_named(sample_workflow, f"rt-{uuid.uuid4().hex[:8]}").model_copy(
        update={"landing_retention_days": 30}
    )
    for each in (kept, workflow):
        own.save_workflow(each)
    (a_name, a, _), (b_name, b, _) = parts(2)
    for each in (kept, workflow):
        old_a = put(stack, each, "customers", a_name, a)
        old_b = put(stack, each, "customers", b_name, b)
        run(stack, own, each, "customers")  # ingests both
    # After the run: one file uploaded again with other rows (bronze has not ingested this
    # version), one new file; the orders job holds one ingested file (its newest).
    put(stack, workflow, "customers", b_name, a)
    new = put(stack, workflow, "customers", "new.csv", b)
    orders = put(
        stack, workflow, "orders", "orders.csv", (ROOT / "examples/data/orders.csv").read_bytes()
    )
    run(stack, own, workflow, "orders")
    # products: ingested, old, but its job is running.
    products = put(
        stack, workflow, "products", "p1.csv", (ROOT / "examples/data/products.csv").read_bytes()
    )
    put(stack, workflow, "products", "p2.csv", (ROOT / "examples/data/products.csv").read_bytes())
    run(stack, own, workflow, "products")
    running = own.create_execution(workflow.id, "products", ["bronze"])
    before = landing(stack)
    head = stack.object_store.head(old_a)
    assert head is not None
    held_a = (old_a, head.etag)

    report = apply_retention(stack.settings, own, stack.object_store, now=utcnow() + 29 * DAY)
    assert report.landing_deleted == [] and landing(stack) == before
    report = apply_retention(
        stack.settings, own, stack.object_store, dry_run=True, now=utcnow() + 31 * DAY
    )
    assert report.landing_deleted == [old_a] and landing(stack) == before

    report = apply_retention(stack.settings, own, stack.object_store, now=utcnow() + 31 * DAY)
    assert report.landing_deleted == [old_a]
    assert landing(stack) == before - {old_a}
    assert {old_b, new} >= set(report.landing_not_ingested) and report.landing_not_ingested
    assert orders in landing(stack) and products in landing(stack)
    assert report.skipped == [
        f"landing of {workflow.id}/products: execution {running.id} is running"
    ]
    # bronze keeps the deleted file's rows: its tables still hold the file.
    assert held_a in ingested(stack.settings, JobKey(workflow.id, "customers"))
    own.finish_execution(running.id, ExecutionStatus.CANCELLED, error="held for the test")


def test_execution_retention_keeps_each_jobs_latest_and_what_is_still_committed(
    stack: Stack, own: Store, sample_workflow: Workflow
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    own.save_workflow(workflow)
    layers = list(LAYERS)
    failed = own.create_execution(workflow.id, "customers", layers)
    own.finish_execution(failed.id, ExecutionStatus.FAILED, error="bronze: boom")
    own.notice(
        failed.id,
        [{"event": "failed", "url": "http://127.0.0.1:9/h", "format": "json", "body": {}}],
    )
    cancelled = own.create_execution(workflow.id, "customers", layers)
    own.finish_execution(cancelled.id, ExecutionStatus.CANCELLED, error="by hand")
    first = run(stack, own, workflow, "customers")
    second = run(stack, own, workflow, "customers", full_refresh=True)
    lone = run(stack, own, workflow, "products")
    going = own.create_execution(workflow.id, "orders", layers)
    # The premise: after the full refresh the second run's versions are every table's
    # current ones, the first run's are not.
    for execution_id, current in ((second, True), (first, False)):
        for step in own.get_execution(execution_id).steps:
            for written in step.tables:
                if written.role != "input":
                    table = tables.load(stack.settings, TableRef.parse(written.table))
                    assert table is not None
                    assert (tables.data_version(table) == written.version) is current

    settings = stack.settings.model_copy(update={"executions_retention_days": 90})
    report = apply_retention(settings, own, stack.object_store, now=utcnow() + 89 * DAY)
    assert report.executions_deleted == []
    report = apply_retention(settings, own, stack.object_store, now=utcnow() + 91 * DAY)
    assert sorted(report.executions_deleted) == sorted([failed.id, cancelled.id, first])
    assert sorted(report.executions_kept) == sorted([second, lone])
    for gone in report.executions_deleted:
        with pytest.raises(NotFound):
            own.get_execution(gone)
    assert own.notifications_of(failed.id) == []
    with own.engine.connect() as connection:  # their recorded versions are free for vacuum
        recorded = (
            select(func.count())
            .select_from(StepTableRow)
            .where(StepTableRow.execution_id.in_(report.executions_deleted))
        )
        assert connection.scalar(recorded) == 0
    assert own.get_execution(going.id).active and own.get_execution(second).status == "COMPLETED"
