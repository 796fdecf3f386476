"""Deleting through the API: a landing file (its rows stay in bronze until a run forgets
it), a workflow with its executions (409 while one runs) and, asked for, its data."""

from __future__ import annotations

from flowforge.layout import JobKey, landing_prefix
from orchestrator.store import ExecutionStatus
from orchestrator.workflows import Workflow
from tests.api.conftest import Api, applied, wait_until_ended
from tests.api.test_errors import error_of
from tests.sample_oracle import EXPECTED, ROOT


def upload(api: Api, workflow: Workflow, job: str, *names: str) -> None:
    data = (ROOT / "examples" / "data" / f"{job}.csv").read_bytes()
    files = [("files", (name, data, "text/csv")) for name in names]
    response = api.client.post(f"/api/workflows/{workflow.id}/jobs/{job}/files", files=files)
    assert response.status_code == 201, response.text


def listed(api: Api, workflow: Workflow, job: str) -> list[str]:
    response = api.client.get(f"/api/workflows/{workflow.id}/jobs/{job}/files")
    assert response.status_code == 200, response.text
    return [f["name"] for f in response.json()["files"]]


def test_a_landing_file_is_listed_and_deleted(api: Api, sample_workflow: Workflow) -> None:
    workflow = applied(api, sample_workflow)
    upload(api, workflow, "products", "a.csv", "b.csv")
    assert listed(api, workflow, "products") == ["a.csv", "b.csv"]
    files = f"/api/workflows/{workflow.id}/jobs/products/files"
    gone = api.client.delete(f"{files}/b.csv")
    assert gone.status_code == 204, gone.text
    assert listed(api, workflow, "products") == ["a.csv"]
    assert "b.csv" in error_of(api.client.delete(f"{files}/b.csv"), 404)
    assert "no-such-job" in error_of(
        api.client.get(f"/api/workflows/{workflow.id}/jobs/no-such-job/files"), 404
    )


def test_a_run_forgets_a_deleted_file(api: Api, sample_workflow: Workflow) -> None:
    workflow = applied(api, sample_workflow)
    upload(api, workflow, "products", "a.csv", "b.csv")
    first = api.stack.flow(workflow_id=workflow.id, job_id="products")
    assert api.stack.store.get_execution(first["execution_id"]).status == "COMPLETED"
    api.client.delete(f"/api/workflows/{workflow.id}/jobs/products/files/b.csv")
    runs = f"/api/workflows/{workflow.id}/jobs/products/executions"
    refused = api.client.post(runs, json={"forget": ["a.csv"]})
    assert refused.status_code == 201, refused.text
    failed = wait_until_ended(api, refused.json()["id"])  # a.csv is still in landing
    assert failed["status"] == "FAILED"
    assert "forget: 'a.csv' is still in s3://" in failed["error"]
    started = api.client.post(runs, json={"forget": ["b.csv"]})
    assert started.status_code == 201, started.text
    ended = wait_until_ended(api, started.json()["id"])
    assert ended["status"] == "COMPLETED", ended["error"]
    done = api.stack.store.get_execution(started.json()["id"])
    bronze = done.step("bronze")
    files = {f["key"].rsplit("/", 1)[1]: f for f in bronze.quality["files"]}
    assert files["b.csv"]["status"] == "FORGOTTEN"
    # Only a.csv's rows are left: one copy of the products file.
    assert done.step("silver").rows_out == EXPECTED["products"]["silver"][1]


def test_a_workflow_is_deleted_with_its_executions_and_asked_for_its_data(
    api: Api, sample_workflow: Workflow
) -> None:
    workflow = applied(api, sample_workflow)
    upload(api, workflow, "products", "products.csv")
    store = api.stack.store
    running = store.create_execution(workflow.id, "products", ["bronze"])
    store.start_execution(running.id)
    busy = error_of(api.client.delete(f"/api/workflows/{workflow.id}"), 409)
    assert running.id in busy
    store.finish_execution(running.id, ExecutionStatus.FAILED, error="test over")
    deleted = api.client.delete(f"/api/workflows/{workflow.id}", params={"data": "true"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"workflow_id": workflow.id, "executions": 1, "objects": 1}
    assert api.client.get(f"/api/workflows/{workflow.id}").status_code == 404
    prefix = landing_prefix(JobKey(workflow.id, "products"))
    assert list(api.stack.object_store.list(prefix)) == []
    assert error_of(api.client.delete(f"/api/workflows/{workflow.id}"), 404)
