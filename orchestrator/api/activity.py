"""The pace of the API's own polling: fast while an execution is active, slow while nothing
runs, and woken at once when this API starts or cancels an execution.

The event streams and the reconciler poll the executions store (and Prefect) because the
flow runs write to it from other processes. With nothing active an idle API need not ask
twice a second: it backs off, and a trigger through it (the UI's Run button) wakes every
poller at once. An execution started elsewhere (`flowforge run` in another shell) is seen
within the idle pace; any read of it through the API is fresh regardless.
"""

from __future__ import annotations

import asyncio
import contextlib


class Activity:
    def __init__(self) -> None:
        self._touched: asyncio.Event | None = None

    def touch(self) -> None:
        """Something started or ended here: every waiter goes now (call from the event loop)."""
        touched, self._touched = self._touched, None
        if touched is not None:
            touched.set()

    async def wait(self, seconds: float, stopping: asyncio.Event) -> None:
        """Returns after `seconds`, or sooner when touched or `stopping` is set."""
        if self._touched is None:
            self._touched = asyncio.Event()
        waits = [asyncio.ensure_future(e.wait()) for e in (self._touched, stopping)]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting


class Backoff:
    """A poll interval that doubles from `fast` to `idle` while nothing happens."""

    def __init__(self, fast: float, idle: float) -> None:
        self.fast = fast
        self.idle = max(idle, fast)
        self.seconds = fast

    def next(self, busy: bool) -> float:
        """The wait before the next poll: `fast` after a busy round, else twice the last."""
        self.seconds = self.fast if busy else min(self.seconds * 2, self.idle)
        return self.seconds
