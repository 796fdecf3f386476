"""A whole workflow run over real HTTP, through the served Prefect deployment: started by
POST /api/workflows/{w}/executions, followed at /api/workflow-executions/{id}, a second
start refused with 409 naming the first, the models' previews at their built versions."""

from __future__ import annotations

import time
from typing import Any

from orchestrator.workflows import Workflow
from tests.api.conftest import ROOT, Api, applied
from tests.sample_oracle import EXPECTED, workflow_models


def wait_for_run(api: Api, run_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {"status": "unreadable"}
    while time.monotonic() < deadline:
        response = api.client.get(f"/api/workflow-executions/{run_id}")
        if response.status_code == 200:
            run = response.json()
            if run["status"] not in ("PENDING", "RUNNING"):
                return run
        time.sleep(0.3)
    raise AssertionError(f"workflow execution {run_id} still {run['status']} after {timeout}s")


def land_sample_files(api: Api, workflow: Workflow) -> None:
    for job in workflow.jobs:
        csv = ROOT / "examples" / "data" / f"{job.id}.csv"
        with csv.open("rb") as handle:
            response = api.client.post(
                f"/api/workflows/{workflow.id}/jobs/{job.id}/files",
                files=[("files", (csv.name, handle, "text/csv"))],
            )
        assert response.status_code == 201, response.text


def test_run_a_whole_workflow_over_http(api: Api, sample_workflow: Workflow) -> None:
    workflow = applied(api, sample_workflow)
    land_sample_files(api, workflow)

    started = api.client.post(f"/api/workflows/{workflow.id}/executions", json={})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    assert [e["job_id"] for e in started.json()["executions"]] == [j.id for j in workflow.jobs]
    again = api.client.post(f"/api/workflows/{workflow.id}/executions", json={})
    assert again.status_code == 409 and run_id in again.json()["error"]["message"], again.text
    alone = api.client.post(f"/api/workflows/{workflow.id}/jobs/orders/executions", json={})
    assert alone.status_code == 409, alone.text  # its job is part of the running workflow

    run = wait_for_run(api, run_id)
    assert run["status"] == "COMPLETED", run["error"]
    for execution in run["executions"]:
        counts = {s["layer"]: (s["rows_in"], s["rows_out"], s["rows_rejected"])
                  for s in execution["steps"]}  # fmt: skip
        assert counts == EXPECTED[execution["job_id"]]
    expected = workflow_models()
    assert [m["name"] for m in run["models"]] == list(expected)
    for model in run["models"]:
        assert model["status"] == "BUILT" and model["rows"] == len(expected[model["name"]])
        assert model["seconds"] > 0 and model["version"] is not None
    by_job = {e["job_id"]: e["id"] for e in run["executions"]}
    revenue = next(m for m in run["models"] if m["name"] == "revenue_by_country_month")
    assert {(i["job_id"], i["run_id"]) for i in revenue["inputs"] if i["job_id"]} == {
        ("customers", by_job["customers"]),
        ("orders", by_job["orders"]),
    }
    assert any(i["dimension"] == "countries" for i in revenue["inputs"])

    shown = api.client.get(
        f"/api/workflow-executions/{run_id}/models/customer_lifetime/preview",
        params={"limit": 100},
    )
    assert shown.status_code == 200, shown.text
    assert shown.json()["version"] == next(
        m["version"] for m in run["models"] if m["name"] == "customer_lifetime"
    )
    # 64-bit integers come as text (JavaScript cannot hold them all as numbers).
    assert [(r["customer_id"], r["orders"]) for r in shown.json()["preview"]] == [
        (str(e["customer_id"]), str(e["orders"])) for e in expected["customer_lifetime"][:100]
    ]
    listed = api.client.get(f"/api/workflows/{workflow.id}/executions").json()
    assert [r["id"] for r in listed["items"]] == [run_id]

    missing = api.client.get(f"/api/workflow-executions/{run_id}/models/nope/preview")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    unknown = api.client.post(f"/api/workflows/{workflow.id}/executions", json={"jobs": ["x"]})
    assert unknown.status_code == 400 and "'x'" in unknown.json()["error"]["message"]
    bad = api.client.post(f"/api/workflows/{workflow.id}/executions", json={"jobs": ["../x"]})
    assert bad.status_code == 400 and "jobs[0] '../x' is not a valid ID" in bad.text
    absent = api.client.get("/api/workflow-executions/20260101T000000Z-00000000")
    assert absent.status_code == 404 and "does not exist" in absent.json()["error"]["message"]
    ended = api.client.post(f"/api/workflow-executions/{run_id}/cancel")
    assert ended.status_code == 409 and "COMPLETED" in ended.json()["error"]["message"]
    assert api.client.get(f"/api/workflow-executions/{run_id}").status_code == 200  # serving
