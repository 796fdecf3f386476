"""The Prefect logs of an execution's flow run, oldest first, paginated."""

from __future__ import annotations

import logging
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from flowforge.errors import Unavailable
from orchestrator.api.context import Context, ExecutionId
from orchestrator.api.executions import read_execution
from orchestrator.api.schemas import LogLine, LogPage

router = APIRouter(tags=["executions"])


@router.get("/api/executions/{execution_id}/logs", response_model=LogPage)
async def execution_logs(
    ctx: Context,
    execution_id: ExecutionId,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> LogPage:
    """The log lines Prefect holds for the execution's flow run (its tasks included)."""
    execution = await run_in_threadpool(read_execution, ctx, execution_id)
    page = LogPage(
        execution_id=execution.id,
        flow_run_id=execution.flow_run_id,
        items=[],
        limit=limit,
        offset=offset,
    )
    if execution.flow_run_id:
        page.items = await _read_logs(UUID(execution.flow_run_id), limit, offset)
    return page


async def _read_logs(flow_run_id: UUID, limit: int, offset: int) -> list[LogLine]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort

    try:
        async with get_client() as client:
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                limit=limit,
                offset=offset,
                sort=LogSort.TIMESTAMP_ASC,
            )
    except Exception as exc:
        raise Unavailable(f"the Prefect API did not answer for the logs: {exc}") from None
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
