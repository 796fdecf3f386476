"""Upload -> trigger -> watch over real HTTP: steps, counts, logs, previews, events."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import text

from flowforge import tables
from flowforge.tables import TableRef
from orchestrator.api.schemas import LOG_FLUSH_SECONDS
from orchestrator.store import ExecutionStatus
from orchestrator.workflows import Workflow
from tests.api.conftest import ROOT, Api, applied, wait_until_ended
from tests.sample_oracle import EXPECTED


def test_upload_trigger_and_watch_a_job(api: Api, sample_workflow: Workflow, served: Path) -> None:
    workflow = applied(api, sample_workflow)
    csv = ROOT / "examples" / "data" / "customers.csv"
    with csv.open("rb") as handle:
        uploaded = api.client.post(
            f"/api/workflows/{workflow.id}/jobs/customers/files",
            files=[("files", ("customers.csv", handle, "text/csv"))],
        )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["files"] == [{
        "name": "customers.csv",
        "key": f"landing/{workflow.id}/customers/customers.csv",
        "size_bytes": csv.stat().st_size,
    }]  # fmt: skip

    started = api.client.post(f"/api/workflows/{workflow.id}/jobs/customers/executions", json={})
    assert started.status_code == 201, started.text
    execution_id = started.json()["id"]
    assert started.json()["status"] == "PENDING" and started.json()["flow_run_id"]

    execution = wait_until_ended(api, execution_id)
    assert execution["status"] == "COMPLETED", execution["error"]
    steps = {s["layer"]: s for s in execution["steps"]}
    assert [s["status"] for s in execution["steps"]] == ["COMPLETED"] * 3
    for layer, (rows_in, rows_out, rejected) in EXPECTED["customers"].items():
        assert (steps[layer]["rows_in"], steps[layer]["rows_out"]) == (rows_in, rows_out)
        assert steps[layer]["rows_rejected"] == rejected
        assert steps[layer]["duration_seconds"] > 0
    assert steps["silver"]["quality"]["duplicates_removed"] == 3
    assert execution["balance"]["balanced"] is True

    jobs = {(j["workflow_id"], j["job_id"]): j for j in api.client.get("/api/jobs").json()}
    assert jobs[(workflow.id, "customers")]["latest_execution"]["id"] == execution_id
    assert jobs[(workflow.id, "orders")]["latest_execution"] is None

    listed = api.client.get("/api/executions", params={"workflow_id": workflow.id}).json()
    assert listed["total"] == 1 and [e["id"] for e in listed["items"]] == [execution_id]

    # Prefect ships a run's log lines in batches, after the execution may show COMPLETED
    # (the issue: 0 lines, then 8, then 12): `complete` is false until they all arrived.
    path = f"/api/executions/{execution_id}/logs"
    deadline = time.monotonic() + 60
    answers = [api.client.get(path, params={"limit": 200}).json()]
    while not answers[-1]["complete"]:
        assert time.monotonic() < deadline, f"logs never complete: {answers[-1]['items'][-3:]}"
        time.sleep(0.3)
        answers.append(api.client.get(path, params={"limit": 200}).json())
    logs = answers[-1]
    lines = logs["items"]
    assert {line["flow_run_id"] for line in lines} == {execution["flow_run_id"]}
    stamps = [line["timestamp"] for line in lines]
    assert stamps == sorted(stamps)
    # Complete means whole: each layer's line and the flow's last one are there.
    for layer in ("bronze", "silver", "gold"):
        assert any(line["message"].startswith(f"{layer}: ") for line in lines), layer
    final = [line for line in lines if line["logger"] == "prefect.flow_runs"]
    assert final[-1]["message"].startswith("Finished in state Completed")
    # The served deployment's own log: no poll (its HTTP requests), no warning from the
    # flow run's start (runpy's "found in sys.modules" when the CLI ran as `-m`).
    runner_log = served.read_text()
    assert "HTTP Request" not in runner_log and "RuntimeWarning" not in runner_log, runner_log

    gold = api.client.get(f"/api/executions/{execution_id}/gold", params={"limit": 5}).json()
    assert gold["current"] is True and gold["run_id"] == execution_id
    models = {p["name"]: p for p in gold["items"]}
    assert {"customers_by_country", "signups_per_month", "profile"} <= set(models)
    assert all(len(p["preview"]) <= 5 for p in models.values())
    assert models["profile"]["columns"][0] == "column_name"

    quarantine = api.client.get(f"/api/executions/{execution_id}/quarantine").json()
    (preview,) = quarantine["items"]
    assert preview["rows"] == 6 and len(preview["preview"]) == 6
    assert {"_rule", "_reason"} <= set(preview["columns"])
    # _row_hash (64 bits) as text, exactly the stored value: a JSON number beyond 2^53
    # would reach a browser rounded.
    table = tables.require(
        api.stack.settings, TableRef(preview["table"]), "quarantine", preview["version"]
    )
    stored = pl.from_arrow(table.to_pyarrow_table(columns=["_row_hash"]))["_row_hash"]
    hashes = {str(value) for value in stored}
    assert {row["_row_hash"] for row in preview["preview"]} <= hashes
    assert any(abs(int(row["_row_hash"])) > 2**53 for row in preview["preview"])
    rejects = api.client.get(
        f"/api/executions/{execution_id}/quarantine", params={"layer": "bronze"}
    ).json()  # bronze's rejects table, its current version
    assert (rejects["current"], rejects["run_id"]) == (True, execution_id)
    (preview,) = rejects["items"]
    assert preview["rows"] == len(preview["preview"]) == EXPECTED["customers"]["bronze"][2]
    assert {row["kind"] for row in preview["preview"]} == {"wrong_field_count"}
    too_many = api.client.get(f"/api/executions/{execution_id}/gold", params={"limit": 101})
    assert too_many.status_code == 422

    with api.client.stream(
        "GET", "/api/events", params={"execution_id": execution_id, "once": True}
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    events = [block for block in text.split("\n\n") if block.startswith("event:")]
    assert len(events) == 1 and events[0].startswith("event: execution\n")
    data = json.loads(events[0].split("data: ", 1)[1])
    assert data["id"] == execution_id and data["status"] == "COMPLETED"


def test_the_logs_of_a_run_that_never_logged_its_end(api: Api, sample_workflow: Workflow) -> None:
    """A crashed or cancelled flow run never logs its final line: its logs are complete once
    its execution ended LOG_FLUSH_SECONDS ago, not before (lines may still be on their way)."""
    workflow = applied(api, sample_workflow)
    store = api.stack.store
    execution = store.create_execution(workflow.id, "products", ["bronze", "silver", "gold"])
    store.start_execution(execution.id, flow_run_id=str(uuid.uuid4()))  # no line in Prefect
    store.finish_execution(execution.id, ExecutionStatus.CRASHED, error="the process was killed")
    path = f"/api/executions/{execution.id}/logs"
    just_ended = api.client.get(path).json()
    assert (just_ended["complete"], just_ended["items"]) == (False, [])
    long_ago = datetime.now(UTC) - timedelta(seconds=LOG_FLUSH_SECONDS + 1)
    with store.engine.begin() as connection:
        connection.execute(
            text("UPDATE executions SET finished_at = :ended WHERE id = :id"),
            {"ended": long_ago, "id": execution.id},
        )
    later = api.client.get(path).json()
    assert (later["complete"], later["items"]) == (True, [])
