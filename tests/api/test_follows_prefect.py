"""The API's view of an execution stays true to Prefect: a flow run that crashed or was
cancelled in Prefect, without its flow recording it, shows as such through the API."""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.states import Cancelled, Crashed, Running

from orchestrator.flow import medallion
from orchestrator.workflows import Workflow
from tests.api.conftest import Api, applied, wait_until_ended


def test_flow_runs_ended_in_prefect_end_their_executions(
    api: Api, sample_workflow: Workflow
) -> None:
    workflow = applied(api, sample_workflow)
    store = api.stack.store
    with get_client(sync_client=True) as client:
        runs = {}
        for job in ("customers", "orders"):
            flow_run = client.create_flow_run(medallion, parameters={}, state=Running())
            execution = store.create_execution(workflow.id, job, ["bronze", "silver", "gold"])
            store.start_execution(execution.id, flow_run_id=str(flow_run.id))
            runs[job] = (execution.id, flow_run.id)
        shown = api.client.get(f"/api/executions/{runs['customers'][0]}").json()
        assert shown["status"] == "RUNNING"  # Prefect says running: so does the API

        # What a lost worker or the Prefect UI leaves behind: the flow never hears of it.
        client.set_flow_run_state(runs["customers"][1], Crashed(message="worker lost"), force=True)
        client.set_flow_run_state(runs["orders"][1], Cancelled(message="from the UI"), force=True)

    crashed = wait_until_ended(api, runs["customers"][0], timeout=30)
    assert (crashed["status"], crashed["error"]) == ("CRASHED", "worker lost")
    assert [s["status"] for s in crashed["steps"]] == ["SKIPPED"] * 3
    cancelled = wait_until_ended(api, runs["orders"][0], timeout=30)
    assert (cancelled["status"], cancelled["error"]) == ("CANCELLED", "from the UI")
    jobs = {
        j["job_id"]: j
        for j in api.client.get("/api/jobs").json()
        if j["workflow_id"] == workflow.id
    }
    assert jobs["customers"]["latest_execution"]["status"] == "CRASHED"
    again = api.client.post(f"/api/workflows/{workflow.id}/jobs/orders/executions", json={})
    assert again.status_code == 201, again.text  # the job is free again
    ended = wait_until_ended(api, again.json()["id"])  # nothing landed: it fails, and says so
    assert ended["status"] == "FAILED"
    assert "no CSV objects under s3://" in ended["error"]
    assert f"landing/{workflow.id}/orders/" in ended["error"]
