"""What a flow run works with (settings and the executions store), and running flows here.

A flow run of the served deployment is a process of its own: it reads its settings from
the environment and opens the store for the run. The demo, `flowforge run` without a
Prefect API and the tests run flows in this process instead, through one InProcessRunner
that hands its own settings and store to the flows it starts. Nothing is kept in module
globals: the context travels in a ContextVar, which threads started by the runner and
Prefect's task threads inherit.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flowforge.settings import Settings, get_settings
from orchestrator.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowContext:
    settings: Settings
    store: Store


_current: contextvars.ContextVar[FlowContext | None] = contextvars.ContextVar(
    "flowforge_flow_context", default=None
)


@contextlib.contextmanager
def flow_context() -> Iterator[FlowContext]:
    """The running flow's settings and store: the in-process runner's, or (a flow run of
    the served deployment, a state hook in the runner) from the environment, with a store
    opened for this block and closed after it."""
    given = _current.get()
    if given is not None:
        yield given
        return
    settings = get_settings()
    store = Store.open(settings)
    context = FlowContext(settings, store)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
        store.close()


@contextlib.contextmanager
def using(settings: Settings, store: Store) -> Iterator[FlowContext]:
    """Flows called inside the block (in this thread) use these settings and this store."""
    context = FlowContext(settings, store)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


class InProcessRunner:
    """Runs flows in threads of this process with explicit settings and store.

    A cancelled execution is marked CANCELLED in the store (orchestrator.trigger); the flow
    reads that before each layer and stops there, so no later layer commits."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._threads: list[threading.Thread] = []

    def run(self, flow: Callable[..., Any], **parameters: Any) -> Any:
        """Runs the flow in this thread and returns its result."""
        with using(self.settings, self.store):
            return flow(**parameters)

    def submit(self, flow: Callable[..., Any], **parameters: Any) -> threading.Thread:
        """Starts the flow in a thread of its own; the caller's context (its Prefect
        settings, e.g. the API URL) goes with it."""
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run,
            args=(self._run_logged, flow, parameters),
            name=f"flow-{parameters.get('execution_id', '')}",
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)
        return thread

    def _run_logged(self, flow: Callable[..., Any], parameters: dict[str, Any]) -> None:
        try:
            self.run(flow, **parameters)
        except Exception:  # the flow has recorded it in the store
            log.debug("in-process flow run failed", exc_info=True)

    def join(self, timeout: float = 60.0) -> None:
        """Waits for the flows started here to finish reporting to Prefect (an execution
        ends in the store a moment before its flow run's final state)."""
        while self._threads:
            self._threads.pop().join(timeout)
