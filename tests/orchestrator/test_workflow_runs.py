"""Workflow runs through real services, SeaweedFS, PostgreSQL and a Prefect server: every
job, then the workflow's own models; a failing job skips only the models that read it;
one run per workflow at a time; `--jobs` reuses the others' committed silver."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import polars as pl
import pytest
from prefect.client.orchestration import get_client

from flowforge import tables
from flowforge.errors import Conflict, FailedPrecondition, InvalidArgument
from flowforge.tables import TableRef
from orchestrator.store import WorkflowExecutionRecord
from orchestrator.trigger import cancel_workflow_execution, trigger_workflow_execution
from orchestrator.workflow_flow import workflow_run
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import Stack
from tests.sample_oracle import EXPECTED, workflow_models


def wait_for_workflow(stack: Stack, run_id: str, timeout: float = 180) -> WorkflowExecutionRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = stack.store.get_workflow_execution(run_id)
        if not run.active:
            return run
        time.sleep(0.2)
    raise AssertionError(f"workflow execution {run_id} still {run.status} after {timeout}s")


def start(stack: Stack, workflow: Workflow, **options: Any) -> WorkflowExecutionRecord:
    runner = stack.runner()
    run = trigger_workflow_execution(
        stack.settings, workflow.id, store=stack.store, runner=runner, **options
    )
    ended = wait_for_workflow(stack, run.id)
    runner.join()
    return ended


def model_rows(stack: Stack, model: dict[str, Any]) -> list[dict[str, Any]]:
    """A model's table at the version the workflow execution recorded, as any reader sees it."""
    frame = pl.read_delta(
        TableRef(model["table"]).uri(stack.settings),
        version=model["version"],
        storage_options=tables.polars_options(stack.settings),
    )
    return frame.to_dicts()


def test_a_workflow_run_runs_every_job_then_the_workflow_models(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    run = start(stack, workflow)

    assert run.status == "COMPLETED", run.error
    assert run.jobs == [j.id for j in workflow.jobs]
    for execution in run.executions:
        assert execution.status == "COMPLETED", execution.error
        assert execution.workflow_execution_id == run.id
        counts = {s.layer: (s.rows_in, s.rows_out, s.rows_rejected) for s in execution.steps}
        assert counts == EXPECTED[execution.job_id]
    expected = workflow_models()
    assert [m["name"] for m in run.models] == list(expected)  # dependency order
    by_job = {e.job_id: e.id for e in run.executions}
    for model in run.models:
        assert model["status"] == "BUILT"
        assert model_rows(stack, model) == expected[model["name"]], model["name"]
        assert model["rows"] == len(expected[model["name"]])
        # Lineage: each silver it read names the execution of this run that committed it.
        for read in model["inputs"]:
            if read["job_id"]:
                assert read["run_id"] == by_job[read["job_id"]]
    lifetime = next(m for m in run.models if m["name"] == "customer_lifetime")
    assert {i["job_id"] for i in lifetime["inputs"] if i["job_id"]} == {"customers", "orders"}

    # Prefect shows each job's run as a subflow of the workflow's flow run.
    with get_client(sync_client=True) as client:
        for execution in run.executions:
            assert execution.flow_run_id is not None
            child = client.read_flow_run(UUID(execution.flow_run_id))
            assert child.parent_task_run_id is not None
            parent = client.read_task_run(child.parent_task_run_id)
            assert str(parent.flow_run_id) == run.flow_run_id


def test_a_failing_job_skips_the_models_that_read_it_and_names_it(
    stack: Stack, sample_workflow: Workflow
) -> None:
    jobs = []
    for job in sample_workflow.jobs:
        if job.id == "products":  # its silver names a column the CSV does not have
            columns = [dict(c) for c in job.silver["columns"]]
            columns[0]["source"] = "no_such_column"
            job = job.model_copy(update={"silver": job.silver | {"columns": columns}})
        jobs.append(job)
    workflow = stack.add_workflow(sample_workflow, jobs=jobs)

    run = start(stack, workflow)

    assert run.status == "FAILED"
    assert run.error is not None and "products" in run.error
    status = {e.job_id: e.status for e in run.executions}
    assert status == {"customers": "COMPLETED", "orders": "COMPLETED", "products": "FAILED"}
    models = {m["name"]: m for m in run.models}
    assert models["best_sellers_by_category"]["status"] == "SKIPPED"
    assert "silver.products" in models["best_sellers_by_category"]["reason"]
    expected = workflow_models()
    for name in ("valid_orders", "revenue_by_country_month", "customer_lifetime"):
        assert models[name]["status"] == "BUILT"
        assert model_rows(stack, models[name]) == expected[name]


def test_one_workflow_run_at_a_time_and_jobs_reuse_the_others_silver(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    runner = stack.runner()
    first = trigger_workflow_execution(
        stack.settings, workflow.id, store=stack.store, runner=runner
    )
    with pytest.raises(Conflict) as refused:
        trigger_workflow_execution(stack.settings, workflow.id, store=stack.store, runner=runner)
    assert first.id in refused.value.message
    first = wait_for_workflow(stack, first.id)
    runner.join()
    assert first.status == "COMPLETED", first.error

    with pytest.raises(InvalidArgument, match="no job 'nope'"):
        trigger_workflow_execution(
            stack.settings, workflow.id, ["nope"], store=stack.store, runner=runner
        )
    again = start(stack, workflow, jobs=["orders"])

    assert again.status == "COMPLETED", again.error
    assert [e.job_id for e in again.executions] == ["orders"]
    first_runs = {e.job_id: e.id for e in first.executions}
    expected = workflow_models()
    for model in again.models:
        assert model_rows(stack, model) == expected[model["name"]]
        for read in model["inputs"]:
            if read["job_id"] == "orders":  # run again now
                assert read["run_id"] == again.executions[0].id
            elif read["job_id"]:  # reused: the silver the first run committed
                assert read["run_id"] == first_runs[read["job_id"]]

    # A scheduled flow run (Prefect passes no execution id) records its own workflow run.
    ran = stack.runner().run(
        workflow_run, workflow_id=workflow.id, jobs=["products"], cause="schedule"
    )
    scheduled = stack.store.get_workflow_execution(ran["workflow_execution_id"])
    assert (scheduled.status, scheduled.cause, scheduled.jobs) == (
        "COMPLETED",
        "schedule",
        ["products"],
    )
    assert [e.cause for e in scheduled.executions] == ["schedule"]


def test_cancelling_a_workflow_run_cancels_its_jobs(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    runner = stack.runner()
    run = trigger_workflow_execution(stack.settings, workflow.id, store=stack.store, runner=runner)
    cancelled = cancel_workflow_execution(stack.settings, run.id, stack.store)
    assert cancelled.status == "CANCELLED"
    assert {e.status for e in cancelled.executions} == {"CANCELLED"}
    runner.join()
    ended = stack.store.get_workflow_execution(run.id)
    assert ended.status == "CANCELLED" and ended.error == "cancelled on request"
    assert {e.status for e in ended.executions} == {"CANCELLED"}
    with pytest.raises(FailedPrecondition, match="ended CANCELLED"):
        cancel_workflow_execution(stack.settings, run.id, stack.store)
    # The workflow is free again. A run of one job whose models read jobs never committed
    # fails at the models, naming the silver that is missing.
    again = trigger_workflow_execution(
        stack.settings, workflow.id, ["products"], store=stack.store, runner=runner
    )
    ended = wait_for_workflow(stack, again.id)
    runner.join()
    assert ended.status == "FAILED" and ended.executions[0].status == "COMPLETED"
    assert ended.error is not None and ended.error.startswith("workflow gold: silver of job")
    assert "has not been committed" in ended.error
