"""The Prefect logs of an execution's flow run, oldest first, paginated, and whether they
are all there yet."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from flowforge.errors import Unavailable
from orchestrator.api.context import Context, ExecutionId
from orchestrator.api.executions import read_execution
from orchestrator.api.schemas import LOG_FLUSH_SECONDS, LogLine, LogPage
from orchestrator.store import ExecutionRecord

router = APIRouter(tags=["executions"])
# The flow engine's last line of every flow run it sees to the end ("Finished in state
# Completed()"), logged by the flow run's logger after its hooks ran.
FINAL_LOGGER = "prefect.flow_runs"
FINAL_PREFIX = "Finished in state "


@router.get("/api/executions/{execution_id}/logs", response_model=LogPage)
async def execution_logs(
    ctx: Context,
    execution_id: ExecutionId,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> LogPage:
    """The log lines Prefect holds for the execution's flow run (its tasks included).
    Prefect receives them in batches, after the execution's status may already say it
    ended: `complete` says when every line has arrived."""
    execution = await run_in_threadpool(read_execution, ctx, execution_id)
    page = LogPage(
        execution_id=execution.id,
        flow_run_id=execution.flow_run_id,
        items=[],
        limit=limit,
        offset=offset,
        complete=not execution.active,
    )
    if execution.flow_run_id:
        flow_run_id = UUID(execution.flow_run_id)
        page.items = await _read_logs(flow_run_id, limit, offset)
        page.complete = not execution.active and (
            _long_ended(execution) or await _final_line_arrived(flow_run_id)
        )
    return page


def _long_ended(execution: ExecutionRecord) -> bool:
    """Ended long enough ago that no batch is still on its way (a crashed or cancelled
    run's process never logs its final line)."""
    ended = execution.finished_at
    return ended is not None and datetime.now(UTC) - ended > timedelta(seconds=LOG_FLUSH_SECONDS)


async def _final_line_arrived(flow_run_id: UUID) -> bool:
    from prefect.client.schemas.sorting import LogSort

    newest = await _query(flow_run_id, limit=5, offset=0, sort=LogSort.TIMESTAMP_DESC)
    return any(
        log.name == FINAL_LOGGER and not log.task_run_id and log.message.startswith(FINAL_PREFIX)
        for log in newest
    )


async def _read_logs(flow_run_id: UUID, limit: int, offset: int) -> list[LogLine]:
    from prefect.client.schemas.sorting import LogSort

    logs = await _query(flow_run_id, limit, offset, LogSort.TIMESTAMP_ASC)
    return [
        LogLine(
            timestamp=log.timestamp,
            level=log.level,
            level_name=logging.getLevelName(log.level),
            logger=log.name,
            message=log.message,
            flow_run_id=str(log.flow_run_id) if log.flow_run_id else None,
            task_run_id=str(log.task_run_id) if log.task_run_id else None,
        )
        for log in logs
    ]


async def _query(flow_run_id: UUID, limit: int, offset: int, sort: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    try:
        async with get_client() as client:
            return await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                limit=limit,
                offset=offset,
                sort=sort,
            )
    except Exception as exc:
        raise Unavailable(f"the Prefect API did not answer for the logs: {exc}") from None
