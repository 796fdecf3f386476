"""The executions store on SQLite and PostgreSQL: migrations, one active run per job, steps."""

from __future__ import annotations

import threading
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from flowforge.errors import Conflict, InvalidArgument, NotFound
from orchestrator.store import ExecutionStatus, StepStatus, Store
from orchestrator.store.database import upgrade
from orchestrator.store.models import Base
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import workflow_named

LAYERS = ["bronze", "silver", "gold"]


@pytest.fixture
def workflow(any_store: Store, sample_workflow: Workflow) -> Workflow:
    workflow = workflow_named(sample_workflow, f"wf-{uuid.uuid4().hex[:8]}")
    any_store.save_workflow(workflow, "id: ...")
    return workflow


def test_migrations_create_the_tables_and_run_again_harmlessly(any_store: Store) -> None:
    upgrade(any_store.engine)  # a second process opening the store
    tables = set(inspect(any_store.engine).get_table_names())
    assert {"workflows", "jobs", "executions", "execution_steps", "alembic_version"} <= tables


def test_migrations_give_exactly_the_models_schema(any_store: Store) -> None:
    """Alembic's own comparison of the migrated database with the SQLAlchemy models: a
    model changed without a migration shows up here."""
    with any_store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_workflow_is_stored_and_read_back(any_store: Store, workflow: Workflow) -> None:
    assert any_store.get_workflow(workflow.id) == workflow
    _, job = any_store.get_job(workflow.id, "orders")
    assert job.silver_spec() == workflow.job("orders").silver_spec()
    listed = {w.id: w for w in any_store.list_workflows()}
    assert listed[workflow.id].jobs == ["customers", "orders", "products"]
    with pytest.raises(NotFound, match="no job 'nope'"):
        any_store.get_job(workflow.id, "nope")
    with pytest.raises(NotFound, match="workflow 'missing' does not exist"):
        any_store.get_workflow("missing")


def test_applying_again_replaces_the_definition(any_store: Store, workflow: Workflow) -> None:
    renamed = workflow.model_copy(update={"name": "Renamed", "jobs": workflow.jobs[:2]})
    any_store.save_workflow(renamed)
    assert any_store.get_workflow(workflow.id).name == "Renamed"
    assert [w.jobs for w in any_store.list_workflows() if w.id == workflow.id] == [
        ["customers", "orders"]
    ]


def test_a_second_start_of_a_job_names_the_running_execution(
    any_store: Store, workflow: Workflow
) -> None:
    first = any_store.create_execution(workflow.id, "customers", LAYERS)
    assert first.status == "PENDING"
    assert [(s.layer, s.status) for s in first.steps] == [(layer, "PENDING") for layer in LAYERS]
    with pytest.raises(Conflict, match=f"already has execution '{first.id}' pending"):
        any_store.create_execution(workflow.id, "customers", LAYERS)
    other = any_store.create_execution(workflow.id, "orders", LAYERS)  # another job is fine
    any_store.start_execution(first.id, flow_run_id="flow-run-1")
    with pytest.raises(Conflict, match="running"):
        any_store.create_execution(workflow.id, "customers", ["silver"])
    any_store.finish_execution(first.id, ExecutionStatus.COMPLETED)
    again = any_store.create_execution(workflow.id, "customers", ["silver", "gold"])
    assert again.layers == ["silver", "gold"]
    assert other.id != again.id


def test_racing_starts_let_exactly_one_win(any_store: Store, workflow: Workflow) -> None:
    results: list[str] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        barrier.wait()
        try:
            any_store.create_execution(workflow.id, "products", LAYERS)
            results.append("started")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["conflict"] * 5 + ["started"]


def test_steps_are_recorded_and_a_failure_skips_the_rest(
    any_store: Store, workflow: Workflow
) -> None:
    execution = any_store.create_execution(workflow.id, "customers", LAYERS)
    any_store.start_execution(execution.id)
    any_store.start_step(execution.id, "bronze", run_id=execution.id)
    any_store.finish_step(
        execution.id,
        "bronze",
        StepStatus.COMPLETED,
        rows_in=203,
        rows_out=201,
        rows_rejected=2,
        manifest_key="bronze/x/_manifest.json",
        warnings=["a warning"],
        quality={"rejected_by_reason": {"wrong field count": 2}},
    )
    any_store.start_step(execution.id, "silver", run_id=execution.id)
    any_store.finish_step(execution.id, "silver", StepStatus.FAILED, error="bad spec")
    any_store.finish_execution(execution.id, ExecutionStatus.FAILED, error="silver: bad spec")
    done = any_store.get_execution(execution.id)
    assert done.status == "FAILED" and done.error == "silver: bad spec"
    assert [s.status for s in done.steps] == ["COMPLETED", "FAILED", "SKIPPED"]
    bronze = done.step("bronze")
    assert (bronze.rows_in, bronze.rows_out, bronze.rows_rejected) == (203, 201, 2)
    assert bronze.quality == {"rejected_by_reason": {"wrong field count": 2}}
    assert bronze.warnings == ["a warning"] and bronze.attempts == 1
    assert bronze.started_at is not None and bronze.started_at.tzinfo is not None
    assert done.finished_at is not None and done.to_dict()["steps"][0]["layer"] == "bronze"
    # The first ending wins: a late crash report does not overwrite it.
    assert not any_store.finish_execution(execution.id, ExecutionStatus.CRASHED)
    assert any_store.get_execution(execution.id).status == "FAILED"


def test_a_crash_marks_the_running_step_failed(any_store: Store, workflow: Workflow) -> None:
    execution = any_store.create_execution(workflow.id, "orders", LAYERS)
    any_store.start_execution(execution.id)
    any_store.start_step(execution.id, "bronze", run_id=execution.id)
    any_store.finish_execution(execution.id, ExecutionStatus.CRASHED, error="worker died")
    steps = any_store.get_execution(execution.id).steps
    assert [s.status for s in steps] == ["FAILED", "SKIPPED", "SKIPPED"]


def test_listing_is_newest_first_and_filters(any_store: Store, workflow: Workflow) -> None:
    ids = []
    for _ in range(3):
        execution = any_store.create_execution(workflow.id, "customers", ["gold"])
        any_store.finish_execution(execution.id, ExecutionStatus.COMPLETED)
        ids.append(execution.id)
    listed = any_store.list_executions(workflow_id=workflow.id, job_id="customers")
    assert [e.id for e in listed] == ids[::-1]
    assert any_store.list_executions(workflow_id=workflow.id, status="failed") == []
    assert len(any_store.list_executions(workflow_id=workflow.id, limit=2)) == 2


def test_bad_requests_are_refused(any_store: Store, workflow: Workflow) -> None:
    with pytest.raises(InvalidArgument, match="layers"):
        any_store.create_execution(workflow.id, "customers", ["platinum"])
    with pytest.raises(InvalidArgument, match="execution_id"):
        any_store.create_execution(workflow.id, "customers", LAYERS, execution_id="../x")
    with pytest.raises(NotFound):
        any_store.get_execution("nope")


def test_a_running_step_keeps_its_last_progress_report(
    any_store: Store, workflow: Workflow
) -> None:
    execution = any_store.create_execution(workflow.id, "customers", ["bronze", "silver"])
    report = {"phase": "reading", "bytes_read": 10, "bytes_total": 100, "rows": 3}
    assert not any_store.record_progress(execution.id, "bronze", report)  # not running yet
    any_store.start_execution(execution.id)
    any_store.start_step(execution.id, "bronze", execution.id)
    assert any_store.record_progress(execution.id, "bronze", report)
    assert any_store.record_progress(execution.id, "bronze", report | {"bytes_read": 50})
    step = any_store.get_execution(execution.id).steps[0]
    assert step.progress is not None
    assert step.progress["bytes_read"] == 50 and step.progress["phase"] == "reading"
    assert "updated_at" in step.progress
    any_store.finish_execution(execution.id, ExecutionStatus.CANCELLED, error="cancelled")
    assert not any_store.record_progress(execution.id, "bronze", report | {"bytes_read": 90})
    ended = any_store.get_execution(execution.id).steps
    assert ended[0].status == StepStatus.FAILED and ended[0].progress == step.progress
    assert ended[1].progress is None
