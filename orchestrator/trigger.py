"""Starting and cancelling executions: what `flowforge run` and the HTTP API call.

trigger_execution() records the execution first (so a second start of the same job is a
Conflict naming the running one), then asks Prefect to run the deployment, or hands the
flow to the caller's InProcessRunner (the demo, tests, `flowforge run` without a Prefect
API). Either way it returns at once; follow the execution in the store. A cancel works the
same for both: the store decides it, the flow stops before its next layer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

from flowforge.errors import FailedPrecondition, FlowForgeError, NotFound, Unavailable
from flowforge.settings import Settings
from orchestrator.flow import medallion, plan_layers
from orchestrator.runner import InProcessRunner
from orchestrator.store import ExecutionRecord, ExecutionStatus, Store, WorkflowExecutionRecord
from orchestrator.workflow_flow import workflow_run

log = logging.getLogger(__name__)


def prefect_api_configured() -> bool:
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def trigger_execution(
    settings: Settings,
    workflow_id: str,
    job_id: str,
    from_layer: str = "bronze",
    full_refresh: bool = False,
    *,
    store: Store,
    to_layer: str | None = None,
    runner: InProcessRunner | None = None,
    forget: list[str] | None = None,
    cause: str = "manual",
) -> ExecutionRecord:
    """Creates a PENDING execution and starts its flow run; returns the execution.

    Raises Conflict when the job already has a PENDING or RUNNING execution, NotFound for
    an unknown workflow or job, InvalidArgument for bad layers, and Unavailable (after
    marking the execution FAILED) when Prefect cannot start the deployment.
    runner: run the flow in this process through it, not through the deployment.
    cause: what started it (manual, upload, schedule, follow-up), kept with the execution."""
    layers = plan_layers(from_layer, to_layer)
    execution = store.create_execution(workflow_id, job_id, layers, full_refresh, cause=cause)
    parameters: dict[str, Any] = {
        "workflow_id": workflow_id,
        "job_id": job_id,
        "execution_id": execution.id,
        "from_layer": layers[0],
        "to_layer": layers[-1],
        "full_refresh": full_refresh,
        "forget": list(forget or []),
    }
    if runner is not None:
        runner.submit(medallion, **parameters)
        return execution

    def failed(error: str) -> None:
        store.finish_execution(execution.id, ExecutionStatus.FAILED, error=error)

    flow_run_id = _start_deployment(settings.deployment_name, parameters, failed)
    store.attach_flow_run(execution.id, flow_run_id)
    return store.get_execution(execution.id)


def trigger_workflow_execution(
    settings: Settings,
    workflow_id: str,
    jobs: list[str] | None = None,
    full_refresh: bool = False,
    *,
    store: Store,
    runner: InProcessRunner | None = None,
    cause: str = "manual",
) -> WorkflowExecutionRecord:
    """Records a PENDING workflow execution (and its jobs' executions) and starts the
    workflow flow; returns at once. Conflict when the workflow or one of the jobs runs;
    `jobs`: a subset to run, the others' committed silver is reused."""
    run = store.create_workflow_execution(
        workflow_id, list(jobs or []), plan_layers(), full_refresh, cause=cause
    )
    parameters: dict[str, Any] = {
        "workflow_id": workflow_id,
        "workflow_execution_id": run.id,
        "jobs": run.jobs,
        "full_refresh": full_refresh,
        "cause": cause,
    }
    if runner is not None:
        runner.submit(workflow_run, **parameters)
        return run

    def failed(error: str) -> None:
        store.finish_workflow_execution(run.id, ExecutionStatus.FAILED, error=error)
        for child in run.executions:
            store.finish_execution(child.id, ExecutionStatus.FAILED, error=error)

    flow_run_id = _start_deployment(settings.workflow_deployment_name, parameters, failed)
    store.attach_workflow_flow_run(run.id, flow_run_id)
    return store.get_workflow_execution(run.id)


def cancel_workflow_execution(
    settings: Settings, run_id: str, store: Store
) -> WorkflowExecutionRecord:
    """Marks the workflow execution CANCELLED, cancels its running jobs' executions and
    its Prefect flow run. FailedPrecondition (409) when it already ended."""
    if not store.finish_workflow_execution(
        run_id, ExecutionStatus.CANCELLED, error="cancelled on request"
    ):
        ended = store.get_workflow_execution(run_id)
        raise FailedPrecondition(
            f"workflow execution {run_id!r} is not running: it ended {ended.status}"
        )
    run = store.get_workflow_execution(run_id)
    for child in run.executions:
        if child.active:
            with contextlib.suppress(FailedPrecondition):  # it ended meanwhile
                cancel_execution(settings, child.id, store)
    _cancel_flow_run(run.flow_run_id)
    return store.get_workflow_execution(run_id)


def _start_deployment(name: str, parameters: dict[str, Any], failed: Callable[[str], None]) -> str:
    """A flow run of the deployment; its id. When Prefect cannot start it, `failed` records
    why on what was triggered, then NotFound (no such deployment) or Unavailable."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        flow_run = run_deployment(name, parameters=parameters, timeout=0)
    except Exception as exc:
        cause: Exception = exc
        if isinstance(exc, ObjectNotFound):
            cause = NotFound(f"Prefect has no deployment {name!r}: is `flowforge up` or a "
                             "worker serving it?")  # fmt: skip
        error = f"could not start deployment {name!r}: {cause}"
        failed(error)
        if isinstance(cause, FlowForgeError):
            raise cause from None
        raise Unavailable(error) from None
    return str(flow_run.id)  # type: ignore[union-attr]


def cancel_execution(settings: Settings, execution_id: str, store: Store) -> ExecutionRecord:
    """Marks the execution CANCELLED, then cancels its Prefect flow run (when it has one).

    Raises FailedPrecondition (409) when it already ended, NotFound for an unknown one."""
    # The store decides, in one statement: a run that ends between a check here and the
    # cancel would otherwise be answered as cancelled while it ended on its own.
    if not store.finish_execution(
        execution_id, ExecutionStatus.CANCELLED, error="cancelled on request"
    ):
        ended = store.get_execution(execution_id)
        raise FailedPrecondition(
            f"execution {execution_id!r} is not running: it ended {ended.status}"
        )
    execution = store.get_execution(execution_id)
    _cancel_flow_run(execution.flow_run_id)
    return execution


def _cancel_flow_run(flow_run_id: str | None) -> None:
    """Cancels the Prefect flow run, when there is one and Prefect to ask. A failure is
    only logged: the store has decided, and the flow checks it before each step."""
    if not flow_run_id or not prefect_api_configured():
        return
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(UUID(flow_run_id), Cancelling(), force=True)
    except Exception as exc:
        log.warning("could not cancel the Prefect flow run", extra={"error": str(exc)})
