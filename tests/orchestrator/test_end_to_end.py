"""The flow through real services, SeaweedFS, a Prefect server and PostgreSQL."""

from __future__ import annotations

import time

from orchestrator.flow import medallion
from orchestrator.store import ExecutionRecord
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import Stack


def wait_for(stack: Stack, execution_id: str, timeout: float = 90) -> ExecutionRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = stack.store.get_execution(execution_id)
        if not execution.active:
            return execution
        time.sleep(0.2)
    raise AssertionError(f"execution {execution_id} still {execution.status} after {timeout}s")


def counts(execution: ExecutionRecord) -> dict[str, tuple[int | None, ...]]:
    return {s.layer: (s.rows_in, s.rows_out, s.rows_rejected) for s in execution.steps}


def test_sample_job_completes_with_exact_counts(stack: Stack, sample_workflow: Workflow) -> None:
    workflow = stack.add_workflow(sample_workflow)
    result = medallion(workflow_id=workflow.id, job_id="customers")
    execution = stack.store.get_execution(result["execution_id"])
    assert execution.status == "COMPLETED", execution.error
    assert counts(execution)["bronze"] == (203, 201, 2)
    print(counts(execution), execution.balance)
