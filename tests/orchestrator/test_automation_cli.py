"""`flowforge upload`, `flowforge schedules list` and the retention part of `flowforge
maintain` through typer's runner against the test stack."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from orchestrator.automation_spec import Schedule, Trigger
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import Stack
from tests.orchestrator.test_cli import cli  # noqa: F401 (fixture)
from tests.orchestrator.test_triggers import CUSTOMERS


def test_upload_starts_the_debounce_and_maintain_reports_retention(
    cli: tuple[CliRunner, dict[str, str]],  # noqa: F811
    stack: Stack,
    sample_workflow: Workflow,
    tmp_path: Path,
) -> None:
    runner, env = cli
    jobs = [
        j.model_copy(
            update={
                "trigger": Trigger(on_upload=True, debounce_seconds=600),
                "schedule": Schedule(cron="15 6 * * 1-5", timezone="Europe/Berlin"),
            }
        )
        if j.id == "customers"
        else j
        for j in sample_workflow.jobs
    ]
    workflow = sample_workflow.model_copy(
        update={
            "id": f"cl-{uuid.uuid4().hex[:8]}",
            "jobs": jobs,
            "schedule": Schedule(cron="0 7 * * *", timezone="UTC"),  # whole workflow runs
        }
    )
    stack.store.save_workflow(workflow)
    uploaded = runner.invoke(
        app, ["upload", "-w", workflow.id, "-j", "customers", str(CUSTOMERS)], env=env
    )
    assert uploaded.exit_code == 0, uploaded.output
    assert f"uploaded landing/{workflow.id}/customers/customers.csv" in uploaded.output
    pending = stack.store.pending_trigger(workflow.id, "customers")
    assert pending is not None and pending.files == 1
    assert (
        f"{workflow.id}/customers starts at {pending.due_at:%Y-%m-%d %H:%M:%S}Z" in uploaded.output
    )
    stack.store.drop_trigger(workflow.id, "customers")  # not run here

    listed = runner.invoke(app, ["schedules", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert f"{workflow.id}/customers\t15 6 * * 1-5\tEurope/Berlin\tnext " in listed.output
    own = f"{workflow.id}\t0 7 * * *\tUTC\tnext "  # the workflow's own schedule
    assert any(line.startswith(own) for line in listed.output.splitlines()), listed.output

    missing = tmp_path / "missing.csv"
    refused = runner.invoke(
        app, ["upload", "-w", workflow.id, "-j", "customers", str(missing)], env=env
    )
    assert refused.exit_code == 1 and f"error: {missing} is not a file" in refused.output

    report = runner.invoke(app, ["maintain", "--dry-run", "--json"], env=env)
    assert report.exit_code == 0, report.output
    retention = json.loads(report.stdout)["retention"]
    assert set(retention) == {
        "landing_deleted", "landing_not_ingested", "executions_deleted", "executions_kept",
        "skipped", "errors",
    }  # fmt: skip
