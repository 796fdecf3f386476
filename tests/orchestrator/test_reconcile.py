"""The store follows Prefect: crashed flow runs end their executions; a missing deployment
fails the execution it was asked to run."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.states import Cancelled, Crashed, Running

from flowforge.errors import NotFound
from orchestrator.flow import medallion
from orchestrator.reconcile import reconcile
from orchestrator.trigger import trigger_execution
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import Stack


def test_executions_of_crashed_and_cancelled_flow_runs_are_ended(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    ids = {}
    with get_client(sync_client=True) as client:
        for job, state in (
            ("customers", Crashed(message="the worker was killed")),
            ("orders", Cancelled(message="cancelled in the UI")),
            ("products", Running()),
        ):
            flow_run = client.create_flow_run(medallion, parameters={}, state=state)
            execution = stack.store.create_execution(workflow.id, job, ["bronze", "silver"])
            stack.store.start_execution(execution.id, flow_run_id=str(flow_run.id))
            ids[job] = execution.id
    changed = {e.id for e in reconcile(stack.settings, stack.store)}
    assert {ids["customers"], ids["orders"]} <= changed
    crashed = stack.store.get_execution(ids["customers"])
    assert (crashed.status, crashed.error) == ("CRASHED", "the worker was killed")
    assert [s.status for s in crashed.steps] == ["SKIPPED", "SKIPPED"]
    assert stack.store.get_execution(ids["orders"]).status == "CANCELLED"
    assert stack.store.get_execution(ids["products"]).status == "RUNNING"  # still going


def test_a_missing_deployment_fails_the_execution(stack: Stack, sample_workflow: Workflow) -> None:
    workflow = stack.add_workflow(sample_workflow)
    settings = stack.settings.model_copy(update={"deployment_name": "flowforge-medallion/nope"})
    with pytest.raises(NotFound, match="Prefect has no deployment 'flowforge-medallion/nope'"):
        trigger_execution(settings, workflow.id, "customers", store=stack.store)
    execution = stack.store.list_executions(workflow_id=workflow.id)[0]
    assert execution.status == "FAILED"
    assert "could not start deployment" in (execution.error or "")
