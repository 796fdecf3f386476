"""The flow through real services, SeaweedFS, a Prefect server and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flowforge.errors import Conflict, InvalidArgument
from orchestrator.prefect_server import flush_clients
from orchestrator.store import ExecutionRecord
from orchestrator.trigger import cancel_execution, trigger_execution
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import Stack
from tests.sample_oracle import EXPECTED, balance_figures, quarantine_reasons


def wait_for(stack: Stack, execution_id: str, timeout: float = 90) -> ExecutionRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = stack.store.get_execution(execution_id)
        if not execution.active:
            return execution
        time.sleep(0.2)
    raise AssertionError(f"execution {execution_id} still {execution.status} after {timeout}s")


def wait_for_step(stack: Stack, execution_id: str, layer: str, status: str) -> None:
    deadline = time.monotonic() + 60
    while stack.store.get_execution(execution_id).step(layer).status != status:
        assert time.monotonic() < deadline, f"{layer} never became {status}"
        time.sleep(0.05)


def counts(execution: ExecutionRecord) -> dict[str, tuple[int | None, ...]]:
    return {s.layer: (s.rows_in, s.rows_out, s.rows_rejected) for s in execution.steps}


def table_artifact(key: str) -> list[dict[str, object]]:
    """The rows of the one table artifact Prefect holds under `key`."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    assert len(artifacts) == 1 and artifacts[0].type == "table"
    data = artifacts[0].data
    return json.loads(data) if isinstance(data, str) else data  # type: ignore[no-any-return]


def layer_events(prefect_api: str, execution_id: str, expected: int) -> list[dict[str, object]]:
    """The flowforge.layer.* events Prefect received for the execution (waiting, up to
    30 s, until `expected` have arrived)."""
    flush_clients()
    query = {"filter": {"resource": {"id": [f"flowforge.execution.{execution_id}"]}}, "limit": 50}
    deadline = time.monotonic() + 30
    while True:
        page = httpx.post(f"{prefect_api}/events/filter", json=query, timeout=10).json()
        events: list[dict[str, object]] = page["events"]
        if len(events) >= expected or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def test_sample_job_completes_with_exact_counts(stack: Stack, sample_workflow: Workflow) -> None:
    workflow = stack.add_workflow(sample_workflow)
    result = stack.flow(workflow_id=workflow.id, job_id="customers")
    execution = stack.store.get_execution(result["execution_id"])
    assert execution.status == "COMPLETED", execution.error
    assert counts(execution) == EXPECTED["customers"]
    assert [s.status for s in execution.steps] == ["COMPLETED"] * 3
    assert execution.flow_run_id and execution.finished_at is not None
    silver = execution.step("silver")
    figures = balance_figures("customers")
    assert silver.quality["duplicates_removed"] == figures["duplicates_removed"]
    assert silver.quality["rejected_by_reason"] == quarantine_reasons("customers")
    bronze = execution.step("bronze")
    assert bronze.quality["rejected_by_reason"] == {
        "wrong_field_count": EXPECTED["customers"]["bronze"][2]
    }
    gold = execution.step("gold")
    models = {m["name"] for m in gold.quality["models"]}
    assert {"customers_by_country", "signups_per_month", "data_quality", "profile"} <= models
    assert execution.balance is not None and execution.balance["balanced"]
    assert execution.balance["figures"] == figures


def test_jobs_of_a_workflow_run_at_once_without_interfering(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    started = [
        trigger_execution(
            stack.settings, workflow.id, job, store=stack.store, runner=stack.runner()
        )
        for job in ("customers", "orders", "products")
    ]
    with pytest.raises(Conflict, match=f"already has execution '{started[0].id}'"):
        trigger_execution(stack.settings, workflow.id, "customers", store=stack.store)
    done = {e.job_id: wait_for(stack, e.id) for e in started}
    for job, execution in done.items():
        assert execution.status == "COMPLETED", execution.error
        assert counts(execution) == EXPECTED[job], job
        # The commit of the job's own bronze table, its first version.
        commit = f"bronze/{workflow.id}/{job}/_delta_log/{0:020d}.json"
        assert execution.step("bronze").manifest_key == commit


def test_bad_spec_fails_silver_with_its_message_and_skips_gold(
    stack: Stack, sample_workflow: Workflow, prefect_api: str
) -> None:
    customers = sample_workflow.job("customers")
    broken = customers.model_copy(
        update={"silver": {"columns": [{"source": "customer_identifier", "type": "integer"}]}}
    )
    workflow = stack.add_workflow(sample_workflow, jobs=[broken])
    with pytest.raises(InvalidArgument, match="customer_identifier"):
        stack.flow(workflow_id=workflow.id, job_id="customers")
    execution = stack.store.list_executions(workflow_id=workflow.id)[0]
    assert execution.status == "FAILED"
    assert execution.error is not None
    assert execution.error.startswith("silver: spec.columns[0].source 'customer_identifier'")
    assert [s.status for s in execution.steps] == ["COMPLETED", "FAILED", "SKIPPED"]
    assert execution.step("silver").attempts == 1  # INVALID_ARGUMENT is not retried
    silver_error = execution.step("silver").error or ""
    assert "is not a bronze column" in silver_error
    # What Prefect shows of the failure: the table artifact and an event per transition.
    rows = table_artifact(f"{workflow.id}-customers")
    assert [(r["layer"], r["status"], r["error"]) for r in rows] == [
        ("bronze", "COMPLETED", ""), ("silver", "FAILED", silver_error), ("gold", "SKIPPED", "")
    ]  # fmt: skip
    events = {
        (e["event"], e["resource"]["flowforge.layer"]): e["payload"]
        for e in layer_events(prefect_api, execution.id, expected=5)
    }
    assert sorted(events) == [
        ("flowforge.layer.completed", "bronze"),
        ("flowforge.layer.failed", "silver"),
        ("flowforge.layer.skipped", "gold"),
        ("flowforge.layer.started", "bronze"),
        ("flowforge.layer.started", "silver"),
    ]
    assert events["flowforge.layer.failed", "silver"] == {"status": "FAILED", "error": silver_error}


def test_a_service_stopped_during_a_run_is_retried_after_its_restart(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    stack.servers["silver"].stop(0)
    restart = threading.Timer(2.5, stack.restart, args=("silver",))
    restart.start()
    try:
        result = stack.flow(workflow_id=workflow.id, job_id="products")
    finally:
        restart.join()
    execution = stack.store.get_execution(result["execution_id"])
    assert execution.status == "COMPLETED", execution.error
    assert execution.step("silver").attempts >= 2
    assert counts(execution) == EXPECTED["products"]


def test_from_silver_reuses_bronze_without_calling_it(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    first = stack.store.get_execution(
        stack.flow(workflow_id=workflow.id, job_id="orders")["execution_id"]
    )
    stack.servers["bronze"].stop(0)  # a call to bronze would now fail
    try:
        result = stack.flow(workflow_id=workflow.id, job_id="orders", from_layer="silver")
    finally:
        stack.restart("bronze")
    again = stack.store.get_execution(result["execution_id"])
    assert again.status == "COMPLETED", again.error
    assert again.layers == ["silver", "gold"]
    assert [s.layer for s in again.steps] == ["silver", "gold"]
    silver = again.step("silver")
    assert silver.quality["input_run_id"] == first.step("bronze").run_id
    assert (silver.rows_in, silver.rows_out) == EXPECTED["orders"]["silver"][:2]


def test_cancelling_ends_the_execution(stack: Stack, sample_workflow: Workflow) -> None:
    workflow = stack.add_workflow(sample_workflow)
    stack.servers["bronze"].stop(0)  # so the run waits in retries
    runner = stack.runner()
    try:
        execution = trigger_execution(
            stack.settings, workflow.id, "customers", store=stack.store, runner=runner
        )
        wait_for_step(stack, execution.id, "bronze", "RUNNING")
        cancelled = cancel_execution(stack.settings, execution.id, store=stack.store)
    finally:
        stack.restart("bronze")
    assert cancelled.status == "CANCELLED"
    runner.join()  # the cancelled run stops before its next layer
    assert stack.store.get_execution(execution.id).status == "CANCELLED"
    # The job is free again.
    again = trigger_execution(
        stack.settings, workflow.id, "customers", store=stack.store, runner=stack.runner()
    )
    assert wait_for(stack, again.id).status == "COMPLETED"


def test_prefect_sees_the_artifact_and_the_layer_events(
    stack: Stack, sample_workflow: Workflow, prefect_api: str
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    execution_id = stack.flow(workflow_id=workflow.id, job_id="products")["execution_id"]
    rows = table_artifact(f"{workflow.id}-products")
    assert [(r["layer"], r["status"], r["rows_out"]) for r in rows] == [
        (layer, "COMPLETED", counts[1]) for layer, counts in EXPECTED["products"].items()
    ]
    names = sorted(e["event"] for e in layer_events(prefect_api, execution_id, expected=6))
    assert names == ["flowforge.layer.completed"] * 3 + ["flowforge.layer.started"] * 3
