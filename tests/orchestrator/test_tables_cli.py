"""`flowforge tables list|history|show` on tables committed as the layers commit them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from flowforge.layout import JobKey
from flowforge.settings import Settings, get_settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from orchestrator.store import StepStatus, Store, TableVersion
from orchestrator.store.database import open_engine
from orchestrator.workflows import Workflow
from tests.delta import commit, table
from tests.orchestrator.conftest import workflow_named
from tests.orchestrator.test_cli import env_of


@pytest.fixture
def cli(settings: Settings) -> Iterator[tuple[CliRunner, dict[str, str]]]:
    get_settings.cache_clear()
    yield CliRunner(), env_of(settings)
    get_settings.cache_clear()


@pytest.fixture
def silver(settings: Settings) -> tuple[TableRef, list[list[dict[str, Any]]]]:
    """A silver table with three versions (two appends, one overwrite) and its rows."""
    ref = TableRef.silver(JobKey(f"tc-{uuid.uuid4().hex[:8]}", "customers"))
    versions = [
        {"id": [1, 2], "name": ["ada", "bob"]},
        {"id": [3, 4, 5], "name": ["cy", "di", "ed"]},
        {"id": [9], "name": ["zed"]},
    ]
    commit(settings, ref, versions[0], "run-1", configuration={"delta.appendOnly": "false"})
    commit(settings, ref, versions[1], "run-2", inputs={"bronze": {"version": 4}})
    commit(settings, ref, versions[2], "run-3", mode="overwrite")
    as_rows = [
        [dict(zip(v, r, strict=True)) for r in zip(*v.values(), strict=True)] for v in versions
    ]
    return ref, [as_rows[0], as_rows[0] + as_rows[1], as_rows[2]]


def invoke(cli: tuple[CliRunner, dict[str, str]], *args: str) -> Any:
    runner, env = cli
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result


def test_list_shows_each_table_with_its_latest_version(
    cli: tuple[CliRunner, dict[str, str]],
    silver: tuple[TableRef, list[list[dict[str, Any]]]],
    settings: Settings,
    store: ObjectStore,
) -> None:
    ref, rows = silver
    listed = json.loads(invoke(cli, "tables", "list", "--json").stdout)
    (found,) = [t for t in listed if t["table"] == ref.path]
    # Oracle for the size: the store's own size of the one file the last version holds.
    (uri,) = table(settings, ref).file_uris()
    key = uri.split(f"{settings.s3_bucket}/", 1)[1]
    info = store.head(key)
    assert info is not None
    assert (found["version"], found["rows"], found["files"]) == (2, len(rows[2]), 1)
    assert found["size_bytes"] == info.size
    assert (found["kind"], found["run_id"], found["last_operation"]) == ("silver", "run-3", "WRITE")
    readable = invoke(cli, "tables", "list").stdout
    line = next(line for line in readable.splitlines() if ref.path in line)
    assert " silver " in line and "run-3" in line


def test_history_lists_every_commit_newest_first(
    cli: tuple[CliRunner, dict[str, str]], silver: tuple[TableRef, list[list[dict[str, Any]]]]
) -> None:
    ref, _ = silver
    history = json.loads(invoke(cli, "tables", "history", ref.path, "--json").stdout)
    assert [(c["version"], c["run_id"]) for c in history["items"]] == [
        (2, "run-3"),
        (1, "run-2"),
        (0, "run-1"),
    ]
    assert history["items"][1]["inputs"] == {"bronze": {"version": 4}}
    readable = invoke(cli, "tables", "history", ref.path, "--limit", "2").stdout
    assert "run-3" in readable and "run-2" in readable and "run-1" not in readable


def test_show_travels_to_any_version(
    cli: tuple[CliRunner, dict[str, str]], silver: tuple[TableRef, list[list[dict[str, Any]]]]
) -> None:
    ref, rows = silver
    for version, expected in enumerate(rows):
        shown = json.loads(
            invoke(cli, "tables", "show", ref.path, "--version", str(version), "--json").stdout
        )
        assert shown["version"] == version and shown["latest_version"] == 2
        assert shown["current"] is (version == 2)
        assert shown["rows"] == len(expected)
        # 64-bit integers as text in JSON, as the API sends them.
        got = sorted(shown["preview"], key=lambda r: int(r["id"]))
        assert got == [{"id": str(r["id"]), "name": r["name"]} for r in expected]
        assert [c["name"] for c in shown["columns"]] == ["id", "name"]
        assert shown["commit"]["run_id"] == f"run-{version + 1}"
    readable = invoke(cli, "tables", "show", ref.path, "--version", "0").stdout
    assert "version 0 (since replaced; latest 2)" in readable and "ada" in readable


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "bronze/w"], "'bronze/w' is not a FlowForge table"),
        (["show", "landing/w/j"], "is not a FlowForge table"),
        (["history", "bronze/../../etc"], "is not a FlowForge table"),
        (["show", "silver/w/_rejects/j"], "is not a FlowForge table"),
        (["show", "silver/nobody/here"], "table silver/nobody/here does not exist"),
    ],
)
def test_bad_tables_are_refused(
    cli: tuple[CliRunner, dict[str, str]], args: list[str], message: str
) -> None:
    runner, env = cli
    result = runner.invoke(app, ["tables", *args], env=env)
    assert result.exit_code == 1 and message in result.stderr, result.output


def test_a_version_out_of_range_is_named(
    cli: tuple[CliRunner, dict[str, str]], silver: tuple[TableRef, list[list[dict[str, Any]]]]
) -> None:
    runner, env = cli
    ref, _ = silver
    result = runner.invoke(app, ["tables", "show", ref.path, "--version", "9"], env=env)
    assert result.exit_code == 1
    assert f"table {ref.path} has no version 9 (its versions are 0 to 2)" in result.stderr


def test_executions_show_lists_the_versions_each_step_committed_and_read(
    cli: tuple[CliRunner, dict[str, str]], tmp_path: Path, sample_workflow: Workflow
) -> None:
    runner, env = cli
    database = Store(open_engine(f"sqlite:///{tmp_path / 'ff.db'}"))
    workflow = workflow_named(sample_workflow, f"tc-{uuid.uuid4().hex[:8]}")
    database.save_workflow(workflow)
    job = JobKey(workflow.id, "customers")
    execution = database.create_execution(workflow.id, job.job_id, ["silver"])
    versions = [
        TableVersion("output", TableRef.silver(job).path, 4),
        TableVersion("input", TableRef.bronze(job).path, 9),
    ]
    database.finish_step(execution.id, "silver", StepStatus.COMPLETED, tables=versions)
    database.close()
    env = env | {"FLOWFORGE_DATABASE_URL": f"sqlite:///{tmp_path / 'ff.db'}"}
    shown = invoke((runner, env), "executions", "show", execution.id).stdout
    assert f"silver tables: committed silver/{job} v4, read bronze/{job} v9" in shown
    as_json = json.loads(invoke((runner, env), "executions", "show", execution.id, "--json").stdout)
    assert as_json["steps"][0]["tables"] == [
        {"role": "output", "table": f"silver/{job}", "version": 4, "model": None},
        {"role": "input", "table": f"bronze/{job}", "version": 9, "model": None},
    ]
