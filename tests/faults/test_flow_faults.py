"""The medallion flow under faults, with real processes: the object store going away during
a layer, a layer service SIGKILLed mid-request. Each execution must complete with exactly
one committed output per layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import pytest

from flowforge.layout import JobKey
from flowforge.tables import TableRef
from orchestrator.store import ExecutionRecord, StepStatus
from orchestrator.trigger import trigger_execution
from orchestrator.workflows import Workflow
from tests.conftest import require
from tests.faults.conftest import FaultStack, one_output_per_layer

# Rows in, out and rejected per layer for the sample `products` job (examples/data).
PRODUCTS = "products"


def wait_until(condition, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def run_flow(stack: FaultStack, workflow: Workflow, job_id: str) -> ExecutionRecord:
    result = stack.flow(workflow_id=workflow.id, job_id=job_id)
    return stack.store.get_execution(result["execution_id"])


def test_store_refusing_connections_during_a_layer_is_retried_to_completion(
    fault_stack: FaultStack, sample_workflow: Workflow
) -> None:
    workflow = fault_stack.add_workflow(sample_workflow)
    silver_store = fault_stack.layer_proxies["silver"]
    outage_seen = threading.Event()
    # The store is gone for silver from the start, and comes back 3 s after bronze has
    # committed: silver's first call is certain to meet the outage, however fast it is.
    silver_store.set("refuse")

    def outage_during_silver() -> None:
        bronze = TableRef.bronze(JobKey(workflow.id, PRODUCTS))
        first_commit = f"{bronze}/_delta_log/{0:020d}.json"
        wait_until(lambda: fault_stack.object_store.head(first_commit) is not None)
        outage_seen.set()
        time.sleep(3)
        silver_store.set("pass")

    outage = threading.Thread(target=outage_during_silver, daemon=True)
    outage.start()
    started = time.monotonic()
    execution = run_flow(fault_stack, workflow, PRODUCTS)
    outage.join(10)
    assert outage_seen.is_set()
    assert execution.status == "COMPLETED", execution.error
    silver = execution.step("silver")
    assert silver.attempts >= 2  # UNAVAILABLE, then retried with backoff
    assert execution.step("bronze").attempts == 1
    assert time.monotonic() - started < 60
    assert execution.balance is not None and execution.balance["balanced"]
    one_output_per_layer(fault_stack.object_store, execution)


@pytest.mark.parametrize("fault_stack", [("bronze",)], indirect=True)
def test_layer_service_killed_mid_request_is_retried_on_the_restarted_service(
    fault_stack: FaultStack, sample_workflow: Workflow
) -> None:
    workflow = fault_stack.add_workflow(sample_workflow)
    bronze_process = fault_stack.processes["bronze"]
    proxy = fault_stack.proxy
    assert proxy is not None
    proxy.set("delay", delay_seconds=0.2)  # a slow store: the Ingest lasts a while
    killed = threading.Event()

    def kill_then_restart() -> None:
        bronze = TableRef.bronze(JobKey(workflow.id, PRODUCTS))
        wait_until(lambda: any(True for _ in fault_fast_list(bronze.prefix + "part-")))
        bronze_process.kill()  # SIGKILL while the request is writing its parts
        killed.set()
        proxy.set("pass")
        time.sleep(1)
        bronze_process.start()  # same port, as a supervisor would restart it

    def fault_fast_list(prefix: str):  # type: ignore[no-untyped-def]
        return fault_stack.object_store.list(prefix)

    restarter = threading.Thread(target=kill_then_restart, daemon=True)
    restarter.start()
    started = time.monotonic()
    execution = run_flow(fault_stack, workflow, PRODUCTS)
    restarter.join(30)
    assert killed.is_set()
    assert time.monotonic() - started < 90  # it did not hang on the dead service
    assert execution.status == "COMPLETED", execution.error
    assert execution.step("bronze").attempts >= 2
    assert execution.balance is not None and execution.balance["balanced"]
    one_output_per_layer(fault_stack.object_store, execution, strays=True)


def postgresql(action: str) -> None:
    """Starts, stops or restarts this machine's PostgreSQL (the executions store's server)."""
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=60,
    )


def require_pg_ctl() -> None:
    require(
        bool(shutil.which("pg_ctlcluster")) and os.geteuid() == 0,
        "restarting PostgreSQL needs pg_ctlcluster and root",
    )


def test_store_calls_wait_for_postgresql_to_come_back(
    fault_stack: FaultStack, sample_workflow: Workflow
) -> None:
    require_pg_ctl()
    workflow = fault_stack.add_workflow(sample_workflow)
    store = fault_stack.store
    execution = store.create_execution(workflow.id, PRODUCTS, ["bronze"])
    store.start_step(execution.id, "bronze", run_id=execution.id)
    postgresql("stop")
    try:
        finished = threading.Thread(
            target=store.finish_step,
            args=(execution.id, "bronze", StepStatus.COMPLETED),
            kwargs={"rows_in": 40, "rows_out": 40},
        )
        finished.start()
        finished.join(3)
        assert finished.is_alive(), "the write gave up while the database was down"
    finally:
        postgresql("start")
    finished.join(store.reconnect_seconds)
    step = store.get_execution(execution.id).step("bronze")
    assert (step.status, step.rows_out) == ("COMPLETED", 40)


def test_postgresql_restarting_during_a_run(
    fault_stack: FaultStack, sample_workflow: Workflow
) -> None:
    require_pg_ctl()
    workflow = fault_stack.add_workflow(sample_workflow)
    proxy = fault_stack.proxy
    assert proxy is not None
    proxy.set("delay", delay_seconds=0.2)  # bronze takes a few seconds: restart meanwhile
    execution_id = trigger_execution(
        fault_stack.settings,
        workflow.id,
        PRODUCTS,
        store=fault_stack.store,
        runner=fault_stack.runner(),
    ).id

    def bronze_running() -> bool:
        steps = fault_stack.store.get_execution(execution_id).steps
        return any(s.layer == "bronze" and s.status == "RUNNING" for s in steps)

    wait_until(bronze_running)
    postgresql("restart")
    proxy.set("pass")
    deadline = time.monotonic() + 90
    execution = fault_stack.store.get_execution(execution_id)
    while execution.active and time.monotonic() < deadline:
        time.sleep(0.2)
        execution = fault_stack.store.get_execution(execution_id)
    assert execution.status == "COMPLETED", execution.error
    assert [s.status for s in execution.steps] == ["COMPLETED"] * 3
    assert execution.step("bronze").rows_out == 40
    assert execution.balance is not None and execution.balance["balanced"]
    assert fault_stack.store.active_execution(workflow.id, PRODUCTS) is None  # job free again
    one_output_per_layer(fault_stack.object_store, execution)
