"""Starting and cancelling executions: what `flowforge run` and the HTTP API call.

trigger_execution() records the execution first (so a second start of the same job is a
Conflict naming the running one), then asks Prefect to run the deployment, or hands the
flow to the caller's InProcessRunner (the demo, tests, `flowforge run` without a Prefect
API). Either way it returns at once; follow the execution in the store. A cancel works the
same for both: the store decides it, the flow stops before its next layer.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from flowforge.errors import FailedPrecondition, FlowForgeError, NotFound, Unavailable
from flowforge.settings import Settings
from orchestrator.flow import medallion, plan_layers
from orchestrator.runner import InProcessRunner
from orchestrator.store import ExecutionRecord, ExecutionStatus, Store

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
    try:
        flow_run_id = _start_deployment(settings.deployment_name, parameters)
    except Exception as exc:
        error = f"could not start deployment {settings.deployment_name!r}: {exc}"
        store.finish_execution(execution.id, ExecutionStatus.FAILED, error=error)
        if isinstance(exc, FlowForgeError):
            raise
        raise Unavailable(error) from None
    store.attach_flow_run(execution.id, flow_run_id)
    return store.get_execution(execution.id)


def _start_deployment(name: str, parameters: dict[str, Any]) -> str:
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        flow_run = run_deployment(name, parameters=parameters, timeout=0)
    except ObjectNotFound:
        raise NotFound(f"Prefect has no deployment {name!r}: is `flowforge up` or a worker "
                       "serving it?") from None  # fmt: skip
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
    if execution.flow_run_id and prefect_api_configured():
        try:
            _cancel_flow_run(execution.flow_run_id)
        except Exception as exc:  # cancelled all the same: the flow checks before each layer
            log.warning("could not cancel the Prefect flow run", extra={"error": str(exc)})
    return execution


def _cancel_flow_run(flow_run_id: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(flow_run_id), Cancelling(), force=True)
