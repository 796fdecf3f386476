"""Reconciling the store with Prefect: executions whose flow run ended without saying so.

A worker killed mid-run (OOM, node lost) cannot run the flow's state hooks; Prefect's
own bookkeeping marks the flow run CRASHED or CANCELLED later. reconcile() polls Prefect
for every PENDING or RUNNING execution that has a flow run and ends it the same way.
It also ends RUNNING executions whose flow stopped recording heartbeats (see
liveness.py): a flow killed together with its runner never reaches Prefect's CRASHED.
Call it periodically (the API does) or once (`flowforge executions reconcile`).
"""

from __future__ import annotations

import logging
from uuid import UUID

from flowforge.settings import Settings
from orchestrator.liveness import crash_silent
from orchestrator.store import ExecutionRecord, ExecutionStatus, Store

log = logging.getLogger(__name__)

# Prefect state type -> the execution status it ends in.
_ENDINGS = {
    "CRASHED": ExecutionStatus.CRASHED,
    "CANCELLED": ExecutionStatus.CANCELLED,
    "FAILED": ExecutionStatus.FAILED,
    "COMPLETED": ExecutionStatus.FAILED,  # completed without recording it: not trusted
}


def reconcile(settings: Settings, store: Store) -> list[ExecutionRecord]:
    """Ends the active executions whose flow run has ended; returns those it changed."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    active = [
        e
        for status in ("PENDING", "RUNNING")
        for e in store.list_executions(status=status, limit=1000)
        if e.flow_run_id
    ]
    changed = []
    with get_client(sync_client=True) as client:
        for execution in active:
            assert execution.flow_run_id is not None
            try:
                flow_run = client.read_flow_run(UUID(execution.flow_run_id))
            except ObjectNotFound:
                status, message = ExecutionStatus.CRASHED, "the Prefect flow run no longer exists"
            else:
                state = flow_run.state
                kind = state.type.value if state is not None else ""
                if kind not in _ENDINGS:
                    continue
                status = _ENDINGS[kind]
                message = (state.message if state else None) or f"flow run {kind.lower()}"
            if store.finish_execution(execution.id, status, error=message):
                log.info("reconciled", extra={"execution": execution.id, "status": status.value})
                changed.append(store.get_execution(execution.id))
        changed += crash_silent(settings, store, client)
    return changed
