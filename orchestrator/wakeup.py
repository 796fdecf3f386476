"""Waking the served runner when Prefect announces one of its flow runs, so it polls rarely.

Polling every 0.25 s for a triggered run cost the Prefect server about 6 % of a core with
nothing to do. Instead the runner's own loop polls every few seconds (IDLE_POLL_SECONDS),
and Wakeup listens on Prefect's event stream (the websocket its cancellation observer
uses too) for `prefect.flow-run.Scheduled` events of the served deployments: each one
makes the runner look for flow runs at once, about 0.1 s after the trigger. While the
stream is down (a proxy without websockets, the server restarting), Wakeup polls every
`fallback_seconds` (the old 0.25 s) itself, and once more whenever it reconnects, for the
runs announced while it was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from uuid import UUID

logger = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 5.0
SCHEDULED = "prefect.flow-run.Scheduled"
RECONNECT_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)  # then 30 s each time


class Wakeup:
    def __init__(self, deployment_ids: list[UUID], fallback_seconds: float) -> None:
        self.deployment_ids = deployment_ids
        self.fallback_seconds = fallback_seconds
        self.connected = False
        self.wakes = 0  # events heard (tests read it)
        self._wake = asyncio.Event()

    async def run(self, poll: Callable[[], Awaitable[None]]) -> None:
        """Until cancelled: `poll()` at once on each Scheduled event, every fallback_seconds
        while the stream is down. Never raises: at worst the runner's own loop polls."""
        listener = asyncio.create_task(self._listen())
        try:
            while True:
                wait = math.inf if self.connected else self.fallback_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), None if wait == math.inf else wait)
                self._wake.clear()
                try:
                    await poll()
                except Exception as exc:  # the runner's own loop reports and retries
                    logger.debug("woken poll failed: %s", exc)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    def _set_connected(self, connected: bool) -> None:
        self.connected = connected
        self._wake.set()  # a poll now: runs announced while away, or a switch of pace

    async def _listen(self) -> None:
        from prefect.events.clients import get_events_subscriber

        failures = 0
        while True:
            try:
                subscriber = get_events_subscriber(filter=self._filter(), reconnection_attempts=0)
                async with subscriber as events:
                    self._set_connected(True)
                    failures = 0
                    async for _event in events:
                        self.wakes += 1
                        self._wake.set()
            except Exception as exc:  # down: fall back to polling until it is back
                if failures == 0:
                    logger.info("Prefect's event stream is unavailable (%s): polling", exc)
            finally:
                if self.connected:
                    self._set_connected(False)
            await asyncio.sleep(RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)])
            failures += 1

    def _filter(self):  # type: ignore[no-untyped-def]
        """Scheduled events of the served deployments from now on (no backfill of old ones)."""
        from prefect.events.filters import (
            EventFilter,
            EventNameFilter,
            EventOccurredFilter,
            EventRelatedFilter,
        )
        from prefect.types._datetime import now

        return EventFilter(
            occurred=EventOccurredFilter(since=now("UTC")),
            event=EventNameFilter(name=[SCHEDULED]),
            related=EventRelatedFilter(id=[f"prefect.deployment.{d}" for d in self.deployment_ids]),
        )
