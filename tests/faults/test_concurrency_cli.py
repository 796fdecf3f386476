"""One running execution per job, as `flowforge run` shows it; hostile IDs at `run`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from flowforge.settings import get_settings
from orchestrator.store import ExecutionStatus
from orchestrator.workflows import Workflow
from tests.hostile.path_inputs import HOSTILE_NON_EMPTY
from tests.orchestrator.conftest import Stack
from tests.orchestrator.test_cli import env_of


@pytest.fixture
def cli_env(stack: Stack) -> Iterator[dict[str, str]]:
    get_settings.cache_clear()
    yield env_of(stack.settings)
    get_settings.cache_clear()


def test_second_run_of_a_running_job_names_the_running_execution(
    stack: Stack, sample_workflow: Workflow, cli_env: dict[str, str]
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    running = stack.store.create_execution(workflow.id, "orders", ["bronze", "silver"], False)
    try:
        second = CliRunner().invoke(
            app, ["run", "--workflow", workflow.id, "--job", "orders"], env=cli_env
        )
    finally:
        stack.store.finish_execution(running.id, ExecutionStatus.CANCELLED, error="test over")
    assert second.exit_code == 1, second.output
    assert (
        f"error: job {workflow.id}/orders already has execution {running.id!r} pending; "
        "wait for it or cancel it"
    ) in second.output
    assert [e.id for e in stack.store.list_executions(workflow_id=workflow.id)] == [running.id]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        pytest.param(option, value, id=f"{option}-{label}")
        for option in ("--workflow", "--job")
        for label, value in HOSTILE_NON_EMPTY
    ],
)
def test_run_refuses_path_like_ids(cli_env: dict[str, str], option: str, value: str) -> None:
    args = {"--workflow": "customer-data", "--job": "customers", option: value}
    result = CliRunner().invoke(app, ["run", *(x for kv in args.items() for x in kv)], env=cli_env)
    assert result.exit_code == 1, result.output
    field = {"--workflow": "job.workflow_id", "--job": "job.job_id"}[option]
    assert f"error: {field} " in result.output, result.output  # names the field
    assert "Traceback" not in result.output


def _is_local_file_name(value: str) -> bool:
    """Linux can hold the name as a file (no '/', no NUL, at most 255 bytes with .csv)."""
    return "/" not in value and "\x00" not in value and len((value + ".csv").encode()) <= 255


@pytest.mark.parametrize(
    "value",
    [pytest.param(v, id=label) for label, v in HOSTILE_NON_EMPTY if _is_local_file_name(v)],
)
def test_run_refuses_path_like_file_names(
    stack: Stack,
    sample_workflow: Workflow,
    cli_env: dict[str, str],
    tmp_path: Path,
    value: str,
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    landed = [o.key for o in stack.object_store.list(f"landing/{workflow.id}/")]
    path = tmp_path / (value + ".csv")
    path.write_bytes(b"id\n1\n")
    result = CliRunner().invoke(
        app, ["run", "--workflow", workflow.id, "--job", "orders", "--", str(path)], env=cli_env
    )
    assert result.exit_code == 1, result.output
    assert "error: file name " in result.output, result.output
    assert "Traceback" not in result.output
    # Refused before anything was written or started.
    assert [o.key for o in stack.object_store.list(f"landing/{workflow.id}/")] == landed
    assert stack.store.list_executions(workflow_id=workflow.id) == []
