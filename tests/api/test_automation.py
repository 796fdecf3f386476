"""Runs that start themselves, over real HTTP in front of the real stack: uploads that
trigger one execution after the quiet time, a file put straight into S3, a cron schedule
that fires through Prefect, and a failing job's webhook calls to a receiver on loopback."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
import yaml

from flowforge.layout import JobKey, landing_prefix
from orchestrator.workflows import Workflow
from tests.api.conftest import ROOT, Api, sample_yaml, wait_until_ended
from tests.orchestrator.test_triggers import parts
from tests.receiver import Receiver
from tests.sample_oracle import quarantine_reasons

T = TypeVar("T")
TOKEN = "tok-" + uuid.uuid4().hex
CUSTOMERS = ROOT / "examples" / "data" / "customers.csv"


def apply(api: Api, sample: Workflow, customers: dict[str, Any] | None = None, **top: Any) -> str:
    """The sample workflow under a fresh id with `customers` changed and top-level keys
    added, applied through the API; its id."""
    document = yaml.safe_load(sample_yaml(sample))
    document["id"] = f"au-{uuid.uuid4().hex[:8]}"
    document |= top
    for job in document["jobs"]:
        if job["id"] == "customers":
            job |= customers or {}
    response = api.client.post(
        "/api/workflows",
        content=yaml.safe_dump(document),
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 200, response.text
    return str(document["id"])


def eventually(read: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = read()
        if found is not None:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def executions(api: Api, workflow_id: str) -> list[dict[str, Any]]:
    page = api.client.get(
        "/api/executions", params={"workflow_id": workflow_id, "job_id": "customers"}
    )
    return page.json()["items"]  # type: ignore[no-any-return]


def job(api: Api, workflow_id: str) -> dict[str, Any]:
    return api.client.get(f"/api/workflows/{workflow_id}/jobs/customers").json()  # type: ignore[no-any-return]


def upload(api: Api, workflow_id: str, name: str, data: bytes) -> dict[str, Any]:
    response = api.client.post(
        f"/api/workflows/{workflow_id}/jobs/customers/files",
        files=[("files", (name, data, "text/csv"))],
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_files_uploaded_within_the_debounce_start_one_execution(
    api: Api, sample_workflow: Workflow
) -> None:
    workflow_id = apply(
        api, sample_workflow, {"trigger": {"on_upload": True, "debounce_seconds": 3}}
    )
    files = parts(3)
    dues = [upload(api, workflow_id, name, data)["trigger_due_at"] for name, data, _ in files]
    assert dues == sorted(dues) and all(dues)
    shown = job(api, workflow_id)["trigger"]
    assert shown["pending"] is True and shown["files"] == 3
    # The last upload set it; the landing scan (every second here) may have met a file
    # between its upload and its record as seen, and moved it on by the same quiet time.
    assert datetime.fromisoformat(shown["due_at"]) >= datetime.fromisoformat(dues[-1])

    first = eventually(lambda: executions(api, workflow_id) or None, 60, "an execution")
    execution = wait_until_ended(api, first[0]["id"])
    assert execution["status"] == "COMPLETED", execution["error"]
    assert execution["cause"] == "upload"
    # Started once the last upload had been quiet for 3 s, not after the first.
    assert datetime.fromisoformat(execution["created_at"]) >= datetime.fromisoformat(dues[-1])
    bronze = next(s for s in execution["steps"] if s["layer"] == "bronze")
    assert bronze["rows_in"] == sum(rows for _, _, rows in files)
    assert job(api, workflow_id)["trigger"]["pending"] is False  # nothing more will start
    assert [e["id"] for e in executions(api, workflow_id)] == [execution["id"]]


def test_a_file_put_straight_into_s3_is_found_by_the_landing_scan(
    api: Api, sample_workflow: Workflow
) -> None:
    workflow_id = apply(
        api, sample_workflow, {"trigger": {"on_upload": True, "debounce_seconds": 1}}
    )
    name, data, rows = parts(2)[1]
    key = landing_prefix(JobKey(workflow_id, "customers")) + name
    api.stack.object_store.put_bytes(key, data, content_type="text/csv")  # not through FlowForge

    found = eventually(lambda: executions(api, workflow_id) or None, 30, "an execution")
    execution = wait_until_ended(api, found[0]["id"])
    assert execution["status"] == "COMPLETED", execution["error"]
    assert execution["cause"] == "upload"
    assert next(s for s in execution["steps"] if s["layer"] == "bronze")["rows_in"] == rows
    assert job(api, workflow_id)["trigger"]["pending"] is False


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def test_a_failing_job_calls_each_webhook_once_with_what_failed(
    api: Api, sample_workflow: Workflow, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # botocore at DEBUG prints every request's signed headers: never, not even in a test.
    for noisy in ("botocore", "boto3", "urllib3"):
        caplog.set_level(logging.INFO, logger=noisy)
    hooks = [
        {"url": f"{receiver.url}/hook?token={TOKEN}"},
        {"url": f"{receiver.url}/services/T0/B0/{TOKEN}", "format": "slack"},
    ]
    gold = {"models": [{"name": "broken", "sql": "SELECT no_such_column FROM silver"}]}
    workflow_id = apply(api, sample_workflow, {"gold": gold}, notify={"webhooks": hooks})
    upload(api, workflow_id, "customers.csv", CUSTOMERS.read_bytes())
    started = api.client.post(f"/api/workflows/{workflow_id}/jobs/customers/executions", json={})
    assert started.status_code == 201, started.text
    execution = wait_until_ended(api, started.json()["id"])
    assert execution["status"] == "FAILED"

    generic, slack = sorted(receiver.wait_for(2, timeout=30), key=lambda r: r.path)
    assert generic.path == f"/hook?token={TOKEN}"
    top = sorted(quarantine_reasons("customers").items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    body = generic.body
    assert body["event"] == "execution.failed" and body["status"] == "FAILED"
    assert (body["workflow_id"], body["job_id"], body["execution_id"]) == (
        workflow_id,
        "customers",
        execution["id"],
    )
    assert body["failed_layer"] == "gold" and body["error"] == execution["error"]
    assert "no_such_column" in body["error"]
    assert body["url"] == f"http://flowforge.example:8000/#/executions/{execution['id']}"
    assert body["top_quarantine_reasons"] == [{"reason": r, "rows": n} for r, n in top]
    assert slack.body["text"].startswith(f"FlowForge {workflow_id}/customers: FAILED at gold")

    def both_sent() -> list[dict[str, Any]] | None:
        calls = api.client.get(f"/api/executions/{execution['id']}/notifications").json()
        return calls if [c["status"] for c in calls] == ["sent", "sent"] else None

    calls = eventually(both_sent, 10, "both calls recorded as sent")
    assert [(c["status"], c["attempts"]) for c in calls] == [("sent", 1)] * 2
    assert len(receiver.received) == 2  # once each: sent, nothing left to retry
    shown = api.client.get(f"/api/workflows/{workflow_id}")
    assert [h["url"].split(" ")[0] for h in shown.json()["notify"]["webhooks"]] == [
        f"{receiver.url}/***", f"{receiver.url}/***"
    ]  # fmt: skip
    for text in (shown.text, str(calls), caplog.text):
        assert TOKEN not in text


def test_a_webhook_that_is_not_http_is_refused(api: Api, sample_workflow: Workflow) -> None:
    document = yaml.safe_load(sample_yaml(sample_workflow))
    document["notify"] = {"webhooks": [{"url": "file:///etc/passwd"}]}
    response = api.client.post(
        "/api/workflows", content=yaml.safe_dump(document, sort_keys=False),
        headers={"Content-Type": "application/yaml"},
    )  # fmt: skip
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "notify.webhooks[0].url must be an http:// or https:// URL" in message


def test_a_cron_schedule_fires_through_prefect_and_pauses_there(
    api: Api, sample_workflow: Workflow, prefect_api: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    berlin = ZoneInfo("Europe/Berlin")
    # The first minute boundary at least 12 s away (time to register), as a daily time in
    # Berlin: the test waits 12 to 72 s for it.
    start = datetime.now(UTC) + timedelta(seconds=12)
    target = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    local = target.astimezone(berlin)
    schedule = {"cron": f"{local.minute} {local.hour} * * *", "timezone": "Europe/Berlin"}
    workflow_id = apply(api, sample_workflow, {"schedule": schedule})
    upload(api, workflow_id, "customers.csv", CUSTOMERS.read_bytes())
    slug = f"flowforge:{workflow_id}/customers"

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("flowforge-medallion/customer-data")

        def registered() -> Any:
            found = [s for s in client.read_deployment_schedules(deployment.id) if s.slug == slug]
            return found[0] if found else None

        have = eventually(registered, 20, "the schedule in Prefect")
        assert have.active and (have.schedule.cron, have.schedule.timezone) == (
            schedule["cron"],
            "Europe/Berlin",
        )
        assert have.parameters == {
            "workflow_id": workflow_id,
            "job_id": "customers",
            "cause": "schedule",
        }
        shown = job(api, workflow_id)["schedule"]
        assert shown["registered"] and not shown["paused"]
        assert datetime.fromisoformat(shown["next_run_at"]) == target

        def scheduled_run() -> Any:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(
                    name=DeploymentFilterName(any_=["customer-data"])
                ),
                limit=200,
            )
            mine = [r for r in runs if r.parameters.get("workflow_id") == workflow_id]
            return min(mine, key=lambda r: r.expected_start_time) if mine else None

        flow_run = eventually(scheduled_run, 20, "Prefect's scheduled flow run")
        assert flow_run.expected_start_time == target

        # It runs at its time: an execution caused by the schedule, in that flow run.
        wait = (target - datetime.now(UTC)).total_seconds() + 60
        fired = eventually(lambda: executions(api, workflow_id) or None, wait, "the scheduled run")
        execution = wait_until_ended(api, fired[0]["id"])
        assert execution["status"] == "COMPLETED", execution["error"]
        assert execution["cause"] == "schedule" and execution["flow_run_id"] == str(flow_run.id)

        paused = api.client.post(f"/api/workflows/{workflow_id}/jobs/customers/schedule/pause")
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"] is True and paused.json()["next_run_at"] is None
        assert registered().active is False
        resumed = api.client.post(f"/api/workflows/{workflow_id}/jobs/customers/schedule/resume")
        assert resumed.json()["paused"] is False and registered().active is True
        tomorrow = datetime.combine(local.date() + timedelta(days=1), local.time(), berlin)
        assert datetime.fromisoformat(resumed.json()["next_run_at"]) == tomorrow

        # Paused in Prefect's own UI: FlowForge shows it after its next sync (any apply
        # asks for one).
        client.update_deployment_schedule(deployment.id, have.id, active=False)
        apply(api, sample_workflow)
        eventually(lambda: job(api, workflow_id)["schedule"]["paused"] or None, 10, "paused shown")


def test_a_workflow_schedule_is_one_of_the_workflow_deployment(
    api: Api, sample_workflow: Workflow, prefect_api: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    schedule = {"cron": "30 5 * * 1-5", "timezone": "America/New_York"}
    workflow_id = apply(api, sample_workflow, schedule=schedule)
    slug = f"flowforge:{workflow_id}"
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("flowforge-workflow/customer-data")

        def registered() -> Any:
            found = [s for s in client.read_deployment_schedules(deployment.id) if s.slug == slug]
            return found[0] if found else None

        have = eventually(registered, 20, "the workflow's schedule in Prefect")
        assert have.active and have.schedule.cron == schedule["cron"]
        assert have.parameters == {"workflow_id": workflow_id, "cause": "schedule"}
        shown = api.client.get(f"/api/workflows/{workflow_id}").json()["schedule"]
        # The next weekday 05:30 in New York, by the zone's own rules.
        new_york = ZoneInfo("America/New_York")
        now = datetime.now(new_york)
        day = now.date() if (now.hour, now.minute) < (5, 30) else now.date() + timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        expected = datetime(day.year, day.month, day.day, 5, 30, tzinfo=new_york)
        assert datetime.fromisoformat(shown["next_run_at"]) == expected

        def scheduled_runs() -> Any:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
                limit=200,
            )
            mine = [r for r in runs if r.parameters.get("workflow_id") == workflow_id]
            return mine or None

        first = min(
            eventually(scheduled_runs, 20, "scheduled runs"), key=lambda r: r.expected_start_time
        )
        assert first.expected_start_time == expected
        assert first.parameters == {"workflow_id": workflow_id, "cause": "schedule"}

        paused = api.client.post(f"/api/workflows/{workflow_id}/schedule/pause")
        assert paused.status_code == 200 and paused.json()["paused"] is True, paused.text
        assert registered().active is False
        resumed = api.client.post(f"/api/workflows/{workflow_id}/schedule/resume")
        assert resumed.json()["paused"] is False and registered().active is True
    unscheduled = apply(api, sample_workflow)
    refused = api.client.post(f"/api/workflows/{unscheduled}/schedule/pause")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == f"workflow {unscheduled} has no schedule"


def test_pausing_a_job_without_a_schedule_is_refused(api: Api, sample_workflow: Workflow) -> None:
    workflow_id = apply(api, sample_workflow)
    refused = api.client.post(f"/api/workflows/{workflow_id}/jobs/customers/schedule/pause")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == f"job {workflow_id}/customers has no schedule"
    assert job(api, workflow_id)["schedule"] is None and job(api, workflow_id)["trigger"] is None
