"""Noticing a killed orchestrator: the running flow beats, reconcile ends the silent ones.

A flow run killed together with its runner (SIGKILL, OOM, a lost node) cannot run its
crash hooks, and Prefect keeps showing it RUNNING: nothing is left to report otherwise.
While a flow runs, a thread records a heartbeat on its execution; reconcile() marks a
RUNNING execution whose heartbeat is older than FLOWFORGE_EXECUTION_HEARTBEAT_TIMEOUT_SECONDS
as CRASHED (and its Prefect flow run too), which frees the job for a new run.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from flowforge.settings import Settings
from orchestrator.store import ExecutionRecord, ExecutionStatus, Store

log = logging.getLogger(__name__)


@contextlib.contextmanager
def beating(
    store: Store, execution_id: str, every_seconds: float, workflow: bool = False
) -> Iterator[None]:
    """Records a heartbeat on the execution (a workflow execution when `workflow`) every
    `every_seconds` while the block runs."""
    stop = threading.Event()
    record = store.workflow_heartbeat if workflow else store.heartbeat

    def beat() -> None:
        while not stop.wait(every_seconds):
            try:
                record(execution_id)
            except Exception as exc:  # the store restarting: the next beat will do
                log.warning("heartbeat not recorded", extra={"error": str(exc)[:200]})

    thread = threading.Thread(target=beat, name=f"heartbeat-{execution_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


def crash_silent(settings: Settings, store: Store, client: Any) -> list[ExecutionRecord]:
    """Ends the RUNNING executions whose flow stopped beating; returns them."""
    timeout = settings.execution_heartbeat_timeout_seconds
    since = datetime.now(UTC) - timedelta(seconds=timeout)
    ended = []
    for execution in store.silent_executions(since):
        message = (
            f"the orchestrator stopped reporting (no heartbeat for {timeout:g}s): "
            "its process was killed or lost; run the job again"
        )
        if not store.finish_execution(execution.id, ExecutionStatus.CRASHED, error=message):
            continue
        log.warning("crashed", extra={"execution": execution.id, "error": message})
        if execution.flow_run_id and client is not None:
            _crash_flow_run(client, execution.flow_run_id, message)
        ended.append(store.get_execution(execution.id))
    for run in store.silent_workflow_executions(since):
        message = (
            f"the workflow's orchestrator stopped reporting (no heartbeat for {timeout:g}s): "
            "its process was killed or lost; run the workflow again"
        )
        if store.finish_workflow_execution(run.id, ExecutionStatus.CRASHED, error=message):
            log.warning("crashed", extra={"workflow_execution": run.id, "error": message})
            for child in run.executions:
                store.finish_execution(child.id, ExecutionStatus.CRASHED, error=message)
            if run.flow_run_id and client is not None:
                _crash_flow_run(client, run.flow_run_id, message)
    return ended


def _crash_flow_run(client: Any, flow_run_id: str, message: str) -> None:
    from prefect.states import Crashed

    try:
        client.set_flow_run_state(UUID(flow_run_id), Crashed(message=message), force=True)
    except Exception as exc:  # Prefect's view is secondary; the store is the record
        log.warning("could not mark the flow run crashed", extra={"error": str(exc)[:200]})
