"""Live updates as Server-Sent Events: the store is polled every 0.5 s while a watched
execution is active or something changed, backing off to every IDLE_POLL_SECONDS while
nothing does (a trigger or cancel through this API wakes it at once), and each change to
an execution or one of its steps is sent (the contract is in the README).

The first round is read before the response starts, so an unknown workflow, job or
execution is a 404 like everywhere else; later rounds that find the store unreachable are
skipped (the client keeps its stream and hears of changes once the store is back). Each
open stream polls the store: one client may hold FLOWFORGE_API_MAX_EVENT_STREAMS_PER_CLIENT
of them (then 429), all clients FLOWFORGE_API_MAX_EVENT_STREAMS (then 503)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import DBAPIError
from starlette.types import Receive, Scope, Send

from orchestrator.api.activity import Activity, Backoff
from orchestrator.api.context import ApiContext, Context, ids
from orchestrator.api.errors import responses
from orchestrator.api.limits import Slot
from orchestrator.api.schemas import Execution

router = APIRouter(tags=["events"])
POLL_SECONDS = 0.5
IDLE_POLL_SECONDS = 5.0
KEEPALIVE_SECONDS = 15.0
WINDOW = 50  # the newest executions watched (plus every active one)
ACTIVE = ("PENDING", "RUNNING")


@router.get(
    "/api/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "event: execution | step, data: JSON",
        },
        **responses(429, 503),
    },
)
async def events(
    ctx: Context,
    request: Request,
    workflow_id: Annotated[str | None, Query(max_length=64)] = None,
    job_id: Annotated[str | None, Query(max_length=64)] = None,
    execution_id: Annotated[str | None, Query(max_length=64)] = None,
    once: bool = False,
) -> StreamingResponse:
    """On connect, one `execution` event per watched execution (its current state); then an
    `execution` event whenever one changes and a `step` event per changed step. `once`: end
    after the first round (for polling clients). Past FLOWFORGE_API_MAX_EVENT_STREAMS_PER_CLIENT
    open streams from one address 429, past FLOWFORGE_API_MAX_EVENT_STREAMS in all 503, both
    with Retry-After."""
    filters = {"workflow_id": workflow_id, "job_id": job_id, "execution_id": execution_id}
    ids(**{k: v for k, v in filters.items() if v})
    stopping: asyncio.Event = request.app.state.stopping
    client = request.client.host if request.client else ""
    slots = [ctx.client_streams.take(client)]
    try:
        slots.append(ctx.streams.take())
        watch = partial(_watched, ctx, workflow_id, job_id, execution_id)
        first = await run_in_threadpool(_first_round, ctx, workflow_id, job_id, watch)
    except BaseException:
        for slot in slots:
            slot.release()
        raise
    return EventStream(
        _changes(request, stopping, ctx.activity, first, watch, once),
        slots,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class EventStream(StreamingResponse):
    """A stream that gives its places back when it ends, however it ends (the client
    leaving, the server stopping), even if it never started."""

    def __init__(self, content: AsyncIterator[str], slots: list[Slot], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            for slot in self._slots:
                slot.release()


def _first_round(
    ctx: ApiContext,
    workflow_id: str | None,
    job_id: str | None,
    watch: Callable[[], list[Execution]],
) -> list[Execution]:
    """The watched executions now; NotFound (404) names an unknown workflow or job."""
    if workflow_id and job_id:
        ctx.store.get_job(workflow_id, job_id)
    elif workflow_id:
        ctx.store.get_workflow(workflow_id)
    return watch()


def _watched(
    ctx: ApiContext, workflow_id: str | None, job_id: str | None, execution_id: str | None
) -> list[Execution]:
    if execution_id:
        return [Execution.of(ctx.store.get_execution(execution_id))]
    newest = ctx.store.list_executions(workflow_id, job_id, limit=WINDOW)
    seen = {e.id for e in newest}
    active = [
        e for s in ACTIVE for e in ctx.store.list_executions(workflow_id, job_id, s, limit=1000)
    ]
    return [Execution.of(e) for e in newest + [e for e in active if e.id not in seen]]


def sse(event: str, data: str, event_id: str) -> str:
    return f"event: {event}\nid: {event_id}\ndata: {data}\n\n"


async def _changes(
    request: Request,
    stopping: asyncio.Event,
    activity: Activity,
    first: list[Execution],
    watch: Callable[[], list[Execution]],
    once: bool,
) -> AsyncIterator[str]:
    known: dict[str, Execution] = {}
    sequence = 0
    last_sent = time.monotonic()
    current = first
    pace = Backoff(POLL_SECONDS, IDLE_POLL_SECONDS)
    yield "retry: 2000\n\n"
    while True:
        busy = any(e.status in ACTIVE for e in current)
        for execution in current:
            before = known.get(execution.id)
            if before == execution:
                continue
            known[execution.id] = execution
            sequence += 1
            yield sse("execution", execution.model_dump_json(), f"{sequence}")
            old_steps = {s.layer: s for s in before.steps} if before else {}
            for step in execution.steps:
                if before is not None and old_steps.get(step.layer) != step:
                    body = {"execution_id": execution.id, **json.loads(step.model_dump_json())}
                    yield sse("step", json.dumps(body), f"{sequence}")
            last_sent = time.monotonic()
            busy = True
        if once or await request.is_disconnected():
            return
        if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await activity.wait(pace.next(busy), stopping)
        if stopping.is_set():
            return
        try:
            current = await run_in_threadpool(watch)
        except DBAPIError:  # the store is unreachable for longer than its reconnect wait
            current = []
