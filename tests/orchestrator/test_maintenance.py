"""Table maintenance on the real SeaweedFS: small files compacted with the rows unchanged;
files of old versions nobody recorded deleted after the retention; versions an execution
recorded, and bronze versions silver has not read, kept and readable; tables a running
execution uses left alone; `flowforge maintain` and the flow `flowforge-maintenance`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cli.main import app
from flowforge import catalog
from flowforge.errors import NotFound
from flowforge.layout import JobKey
from flowforge.settings import Settings, get_settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from orchestrator.maintenance import maintain
from orchestrator.maintenance_flow import maintenance
from orchestrator.runner import InProcessRunner
from orchestrator.store import ExecutionStatus, StepStatus, Store, TableVersion
from orchestrator.store.database import open_engine
from orchestrator.workflows import Workflow
from tests.delta import commit, rows, table
from tests.orchestrator.conftest import workflow_named
from tests.orchestrator.test_cli import env_of


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Store]:
    store = Store(open_engine(f"sqlite:///{tmp_path / 'ff.db'}"))
    yield store
    store.close()


@pytest.fixture
def workflow(database: Store, sample_workflow: Workflow) -> Workflow:
    workflow = workflow_named(sample_workflow, f"mt-{uuid.uuid4().hex[:8]}")
    database.save_workflow(workflow)
    return workflow


@pytest.fixture
def no_retention(settings: Settings) -> Settings:
    """Files are deleted as soon as no kept version needs them (vacuum runs with
    enforce_retention_duration off, so 0 hours is allowed)."""
    return settings.model_copy(update={"tables_retention_days": 0})


def data_files(objects: ObjectStore, ref: TableRef) -> set[str]:
    """The table's data files in the bucket (its log aside), as the store lists them."""
    return {o.key for o in objects.list(ref.prefix) if "/_delta_log/" not in o.key}


def version_files(settings: Settings, ref: TableRef, version: int) -> set[str]:
    bucket = f"s3://{settings.s3_bucket}/"
    return {uri.removeprefix(bucket) for uri in table(settings, ref, version).file_uris()}


def recorded(store: Store, workflow: Workflow, job: str, versions: list[TableVersion]) -> str:
    execution = store.create_execution(workflow.id, job, ["silver"])
    store.start_execution(execution.id)
    store.start_step(execution.id, "silver", run_id=execution.id)
    store.finish_step(execution.id, "silver", StepStatus.COMPLETED, tables=versions)
    store.finish_execution(execution.id, ExecutionStatus.COMPLETED)
    return execution.id


def numbered(start: int, count: int) -> dict[str, list[Any]]:
    return {"n": list(range(start, start + count)), "tag": [f"row-{i}" for i in range(count)]}


def test_unrecorded_old_files_go_and_recorded_versions_stay_readable(
    no_retention: Settings, store: ObjectStore, database: Store, workflow: Workflow
) -> None:
    ref = TableRef.silver(JobKey(workflow.id, "customers"))
    written = [numbered(10 * v, v + 1) for v in range(4)]
    for version, data in enumerate(written):
        commit(no_retention, ref, data, f"run-{version}", mode="overwrite")
    files = {v: version_files(no_retention, ref, v) for v in range(4)}
    recorded(database, workflow, "customers", [TableVersion("output", ref.path, 1)])
    assert data_files(store, ref) == set().union(*files.values())

    (done,) = maintain(no_retention, database, store, [ref])

    assert done.error == "" and done.skipped == "" and done.kept_versions == [1]
    assert data_files(store, ref) == files[1] | files[3]
    assert sorted(f.rsplit("/", 1)[-1] for f in files[0] | files[2]) == sorted(
        f.rsplit("/", 1)[-1] for f in done.files_deleted
    )
    expected = sorted(pa.table(written[1]).to_pylist(), key=lambda r: r["n"])
    assert sorted(rows(no_retention, ref, 1), key=lambda r: r["n"]) == expected
    with pytest.raises(OSError, match="not found|No such file"):
        rows(no_retention, ref, 0)
    assert sorted(r["n"] for r in rows(no_retention, ref)) == written[3]["n"]


def test_small_files_are_compacted_with_the_rows_unchanged(
    settings: Settings, store: ObjectStore, database: Store, workflow: Workflow
) -> None:
    ref = TableRef.bronze(JobKey(workflow.id, "orders"))
    appended = [numbered(100 * i, 3) for i in range(5)]
    for i, data in enumerate(appended):
        commit(settings, ref, data, f"run-{i}")
    before = data_files(store, ref)
    assert len(before) == 5

    (done,) = maintain(settings, database, store, [ref])

    assert (done.files_compacted, done.files_written, done.version) == (5, 1, 5)
    assert len(table(settings, ref).file_uris()) == 1
    assert sorted(r["n"] for r in rows(settings, ref)) == sorted(
        n for d in appended for n in d["n"]
    )
    # A week's retention: the small files stay for readers of versions 0-4 a while yet.
    assert done.files_deleted == [] and before <= data_files(store, ref)
    assert table(settings, ref).history(1)[0]["operation"] == "OPTIMIZE"  # vacuum: no-op


def test_bronze_versions_silver_has_not_read_are_kept(
    no_retention: Settings, store: ObjectStore, database: Store, workflow: Workflow
) -> None:
    """Silver reads the rows bronze inserted after the version it last read from bronze's
    change data feed: compaction must not take those versions' files away."""
    behind, caught_up = JobKey(workflow.id, "customers"), JobKey(workflow.id, "orders")
    for job, read in ((behind, 0), (caught_up, 2)):
        bronze = TableRef.bronze(job)
        for i in range(3):
            cdf = {"delta.enableChangeDataFeed": "true"} if i == 0 else None
            commit(no_retention, bronze, numbered(10 * i, 2), f"b-{i}", configuration=cdf)
        commit(
            no_retention,
            TableRef.silver(job),
            {"x": [1]},
            "s",
            inputs={"bronze": {"version": read}},
        )

    done = {
        d.table: d
        for d in maintain(
            no_retention, database, store, [TableRef.bronze(behind), TableRef.bronze(caught_up)]
        )
    }

    assert done[TableRef.bronze(behind).path].kept_versions == [1, 2]
    assert done[TableRef.bronze(caught_up).path].kept_versions == []
    assert len(data_files(store, TableRef.bronze(behind))) == 3 + 1  # small ones + compacted
    assert len(data_files(store, TableRef.bronze(caught_up))) == 1
    changes = pa.table(
        table(no_retention, TableRef.bronze(behind)).load_cdf(starting_version=1).read_all()
    )
    inserted = sorted(
        n
        for n, kind in zip(
            changes["n"].to_pylist(), changes["_change_type"].to_pylist(), strict=True
        )
        if kind == "insert"
    )
    assert inserted == [10, 11, 20, 21]


def test_tables_a_running_execution_uses_are_left_alone(
    no_retention: Settings, store: ObjectStore, database: Store, workflow: Workflow
) -> None:
    busy_job, idle_job = JobKey(workflow.id, "customers"), JobKey(workflow.id, "products")
    refs = [TableRef.silver(busy_job), TableRef.silver(idle_job)]
    dimension = TableRef.dimension(f"mt{uuid.uuid4().hex[:6]}")
    workflow = workflow.model_copy(update={"dimensions": [dimension.path.split("/")[1]]})
    database.save_workflow(workflow)
    for ref in [*refs, dimension]:
        commit(no_retention, ref, numbered(0, 2), "one", mode="overwrite")
        commit(no_retention, ref, numbered(5, 2), "two", mode="overwrite")
    running = database.create_execution(workflow.id, busy_job.job_id, ["bronze", "silver"])
    database.start_execution(running.id)
    before = data_files(store, refs[0])

    done = {d.table: d for d in maintain(no_retention, database, store, [*refs, dimension])}

    busy = done[refs[0].path]
    assert busy.skipped == f"execution {running.id} of {busy_job} is running"
    assert data_files(store, refs[0]) == before and table(no_retention, refs[0]).version() == 1
    assert done[dimension.path].skipped.startswith(f"execution {running.id}")
    assert done[refs[1].path].skipped == "" and len(done[refs[1].path].files_deleted) == 1

    database.finish_execution(running.id, ExecutionStatus.COMPLETED)
    (after,) = maintain(no_retention, database, store, [refs[0]])
    assert after.skipped == "" and len(after.files_deleted) == 1


@pytest.fixture
def cli(
    settings: Settings, database: Store, tmp_path: Path
) -> Iterator[tuple[CliRunner, dict[str, str]]]:
    get_settings.cache_clear()
    env = env_of(settings) | {
        "FLOWFORGE_DATABASE_URL": str(database.engine.url),
        "FLOWFORGE_TABLES_RETENTION_DAYS": "0",
    }
    yield CliRunner(), env
    get_settings.cache_clear()


def test_flowforge_maintain_reports_each_table(
    cli: tuple[CliRunner, dict[str, str]],
    no_retention: Settings,
    store: ObjectStore,
    workflow: Workflow,
) -> None:
    runner, env = cli
    ref = TableRef.silver(JobKey(workflow.id, "orders"))
    for i in range(3):
        commit(no_retention, ref, numbered(i, 1), f"r{i}", mode="overwrite")
    dry = runner.invoke(app, ["maintain", "--table", ref.path, "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    (planned,) = json.loads(dry.stdout)["tables"]
    assert len(planned["files_deleted"]) == 2 and len(data_files(store, ref)) == 3  # nothing gone
    done = runner.invoke(app, ["maintain", "--table", ref.path], env=env)
    assert done.exit_code == 0, done.output
    line = next(line for line in done.stdout.splitlines() if ref.path in line)
    assert "2 files" in line
    assert data_files(store, ref) == version_files(no_retention, ref, 2)
    refused = runner.invoke(app, ["maintain", "--table", "silver/../x"], env=env)
    assert refused.exit_code == 1 and "is not a FlowForge table" in refused.stderr


def test_the_flow_maintains_and_reports(
    no_retention: Settings,
    store: ObjectStore,
    database: Store,
    workflow: Workflow,
    prefect_api: str,
) -> None:
    ref = TableRef.silver_quarantine(JobKey(workflow.id, "customers"))
    for i in range(2):
        commit(no_retention, ref, numbered(i, 1), f"q{i}", mode="overwrite")
    results = InProcessRunner(no_retention, database).run(maintenance, tables=[ref.path])
    assert [(r["table"], r["files_deleted"], r["error"]) for r in results] == [(ref.path, 1, "")]


def test_a_recorded_version_whose_log_is_gone_is_reported_not_fatal(
    no_retention: Settings, store: ObjectStore, database: Store, workflow: Workflow
) -> None:
    """Delta cleans up log entries older than delta.logRetentionDuration at a checkpoint;
    vacuum cannot keep a version it can no longer load, and must not fail for it."""
    ref = TableRef.silver(JobKey(workflow.id, "products"))
    quick = {"delta.logRetentionDuration": "interval 0 seconds"}
    for version in range(4):
        commit(no_retention, ref, numbered(version, 1), f"r{version}", mode="overwrite",
               configuration=quick if version == 0 else None)  # fmt: skip
    table(no_retention, ref).create_checkpoint()
    table(no_retention, ref).cleanup_metadata()  # the log of versions 0-2 is gone
    commit(no_retention, ref, numbered(4, 1), "r4", mode="overwrite")
    for version in (1, 3):  # two executions' versions
        recorded(database, workflow, "products", [TableVersion("output", ref.path, version)])

    (done,) = maintain(no_retention, database, store, [ref])

    assert (done.error, done.kept_versions, done.lost_versions) == ("", [3], [1])
    assert [r["n"] for r in rows(no_retention, ref, 3)] == [3]
    with pytest.raises(NotFound, match=f"version 1 of table {ref} is no longer in its log"):
        catalog.read_version(no_retention, ref, 1, 5)
