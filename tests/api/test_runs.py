"""Upload -> trigger -> watch over real HTTP: steps, counts, logs, previews, events."""

from __future__ import annotations

import json
import time

from orchestrator.workflows import Workflow
from tests.api.conftest import ROOT, Api, applied, wait_until_ended
from tests.sample_oracle import EXPECTED


def test_upload_trigger_and_watch_a_job(api: Api, sample_workflow: Workflow) -> None:
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

    # Prefect ships a run's log lines in batches, so they may trail the run by a few seconds.
    deadline = time.monotonic() + 60
    while True:
        logs = api.client.get(f"/api/executions/{execution_id}/logs", params={"limit": 200}).json()
        if any("silver" in line["message"] for line in logs["items"]):
            break
        assert time.monotonic() < deadline, f"no silver log lines: {logs['items'][:3]}"
        time.sleep(1)
    assert {line["flow_run_id"] for line in logs["items"]} == {execution["flow_run_id"]}
    stamps = [line["timestamp"] for line in logs["items"]]
    assert stamps == sorted(stamps)
    assert any("silver" in line["message"] for line in logs["items"])

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
