"""The executions store keeps the Delta table versions each step committed and read, on
SQLite and PostgreSQL: migration 0003 adds them to a store holding older executions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, inspect, text

from flowforge import catalog, tables
from flowforge.layout import JobKey
from flowforge.reports import LayerReport, ModelOutput
from flowforge.tables import TableRef
from orchestrator.layers import summarize, table_versions
from orchestrator.store import ExecutionStatus, StepStatus, Store, TableVersion
from orchestrator.store.database import alembic_config, open_engine
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import POSTGRES_URL, Stack, workflow_named

LAYERS = ["bronze", "silver", "gold"]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables yet (PostgreSQL: a schema of its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'flowforge.db'}"
        return
    schema = f"ff_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def migrate(engine: Engine, revision: str, down: bool = False) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_0003_keeps_older_executions_and_adds_their_empty_versions(
    empty_url: str, sample_workflow: Workflow
) -> None:
    """A store at 0002 holding a finished execution: upgraded, the execution reads back
    with no versions, a new step records some; downgraded, the table goes again."""
    engine = open_engine(empty_url, migrate=False)
    try:
        migrate(engine, "0002")
        assert "step_tables" not in inspect(engine).get_table_names()
        old = Store(engine)
        # Store methods that do not touch step tables still work against 0002's schema.
        workflow = workflow_named(sample_workflow, "wf-migrated")
        old.save_workflow(workflow)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO executions (id, workflow_id, job_id, status, layers, "
                    "full_refresh, created_at) VALUES ('old-run', 'wf-migrated', 'customers', "
                    "'COMPLETED', '[\"bronze\"]', false, CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO execution_steps (execution_id, layer, position, status, "
                    "attempts, rows_out) VALUES ('old-run', 'bronze', 0, 'COMPLETED', 1, 201)"
                )
            )
        migrate(engine, "head")
        store = Store(engine)
        before = store.get_execution("old-run")
        assert before.step("bronze").rows_out == 201 and before.step("bronze").tables == []

        execution = store.create_execution(workflow.id, "orders", LAYERS)
        recorded = [TableVersion("output", "bronze/wf-migrated/orders", 4)]
        store.finish_step(execution.id, "bronze", StepStatus.COMPLETED, tables=recorded)
        assert store.get_execution(execution.id).step("bronze").tables == recorded

        migrate(engine, "0002", down=True)
        assert "step_tables" not in inspect(engine).get_table_names()
        with engine.connect() as connection:
            kept = connection.execute(text("SELECT id FROM executions ORDER BY id")).scalars()
            assert sorted(kept) == sorted(["old-run", execution.id])
    finally:
        engine.dispose()


@pytest.fixture
def workflow(any_store: Store, sample_workflow: Workflow) -> Workflow:
    workflow = workflow_named(sample_workflow, f"wf-{uuid.uuid4().hex[:8]}")
    any_store.save_workflow(workflow)
    return workflow


def reports(job: JobKey) -> dict[str, LayerReport]:
    """What each layer reports once it commits Delta tables (flowforge/reports.py)."""
    common = {"workflow_id": job.workflow_id, "job_id": job.job_id, "run_id": "r"}
    return {
        "bronze": LayerReport(
            layer="bronze",
            table=TableRef.bronze(job).path,
            table_version=7,
            side_table=TableRef.bronze_rejects(job).path,
            side_version=3,
            **common,
        ),
        "silver": LayerReport(
            layer="silver",
            table=TableRef.silver(job).path,
            table_version=2,
            input_version=7,
            side_table=TableRef.silver_quarantine(job).path,
            side_version=2,
            **common,
        ),
        "gold": LayerReport(
            layer="gold",
            input_version=2,
            models=[
                ModelOutput(
                    name=name,
                    key="",
                    rows=1,
                    size_bytes=1,
                    table=TableRef.gold_model(job, name).path,
                    version=version,
                )
                for name, version in (("by_country", 5), ("profile", 0))
            ],
            **common,
        ),
    }


def test_each_step_records_what_its_report_committed_and_read(
    any_store: Store, workflow: Workflow
) -> None:
    job = JobKey(workflow.id, "customers")
    execution = any_store.create_execution(workflow.id, job.job_id, LAYERS)
    any_store.start_execution(execution.id)
    for layer, report in reports(job).items():
        any_store.start_step(execution.id, layer, run_id=execution.id)
        versions = table_versions(summarize(report), job)
        any_store.finish_step(execution.id, layer, StepStatus.COMPLETED, tables=versions)
    any_store.finish_execution(execution.id, ExecutionStatus.COMPLETED)

    done = any_store.get_execution(execution.id)
    seen = {
        layer: {(t.role, t.table, t.version, t.model) for t in done.step(layer).tables}
        for layer in LAYERS
    }
    w = workflow.id
    assert seen == {
        "bronze": {
            ("output", f"bronze/{w}/customers", 7, None),
            ("side", f"bronze/{w}/_rejects/customers", 3, None),
        },
        "silver": {
            ("output", f"silver/{w}/customers", 2, None),
            ("side", f"silver/{w}/_quarantine/customers", 2, None),
            ("input", f"bronze/{w}/customers", 7, None),
        },
        "gold": {
            ("model", f"gold/{w}/customers/by_country", 5, "by_country"),
            ("model", f"gold/{w}/customers/profile", 0, "profile"),
            ("input", f"silver/{w}/customers", 2, None),
        },
    }
    # What maintenance keeps: the versions any step committed or read, per table.
    assert any_store.recorded_versions(f"bronze/{w}/customers") == {7}
    assert any_store.recorded_versions(f"silver/{w}/customers") == {2}
    assert any_store.recorded_versions(f"gold/{w}/customers/nope") == set()
    assert done.to_dict()["steps"][0]["tables"][0]["version"] == 7


def test_a_report_without_tables_records_none(any_store: Store, workflow: Workflow) -> None:
    """A layer that still commits a manifest (or a replayed report from before tables)."""
    job = JobKey(workflow.id, "orders")
    report = LayerReport(layer="silver", workflow_id=job.workflow_id, job_id="orders", run_id="r")
    assert table_versions(summarize(report), job) == []


def test_active_executions_are_listed(any_store: Store, workflow: Workflow) -> None:
    running = any_store.create_execution(workflow.id, "products", LAYERS)
    any_store.start_execution(running.id)
    done = any_store.create_execution(workflow.id, "orders", LAYERS)
    any_store.finish_execution(done.id, ExecutionStatus.COMPLETED)
    active = {e.id for e in any_store.active_executions()}
    assert running.id in active and done.id not in active


def test_the_flow_records_what_the_layers_committed(
    stack: Stack, sample_workflow: Workflow
) -> None:
    """Through the real services: each step's recorded versions are those the tables' own
    logs hold for the execution's run id (none while a layer commits a manifest)."""
    workflow = stack.add_workflow(sample_workflow)
    result = stack.flow(workflow_id=workflow.id, job_id="products")
    execution = stack.store.get_execution(result["execution_id"])
    job = JobKey(workflow.id, "products")

    def committed(ref: TableRef) -> int | None:
        found = tables.find_commit(tables.load(stack.settings, ref), execution.id)
        return found.version if found else None

    models = catalog.gold_tables(stack.object_store, job.workflow_id, job.job_id)
    wanted: dict[str, set[tuple[str, str, int | None, str | None]]] = {
        "bronze": {("output", TableRef.bronze(job).path, committed(TableRef.bronze(job)), None)}
        | {
            (
                "side",
                TableRef.bronze_rejects(job).path,
                committed(TableRef.bronze_rejects(job)),
                None,
            )
        },
        "silver": {("output", TableRef.silver(job).path, committed(TableRef.silver(job)), None)}
        | {("side", r.path, committed(r), None) for r in [TableRef.silver_quarantine(job)]}
        | {("input", TableRef.bronze(job).path, committed(TableRef.bronze(job)), None)},
        "gold": {("model", r.path, committed(r), r.path.rsplit("/", 1)[-1]) for r in models}
        | {("input", TableRef.silver(job).path, committed(TableRef.silver(job)), None)},
    }
    for layer, entries in wanted.items():
        expected = {e for e in entries if e[2] is not None}
        got = {(t.role, t.table, t.version, t.model) for t in execution.step(layer).tables}
        assert got == expected, layer
