"""The loops behind runs that start themselves, run by the one long-lived process every
deployment has: the API server (`flowforge serve api`; in compose the `api` service).

Three loops, each in a worker thread once a second, so a slow one never holds up another:
start due upload triggers and follow-ups (triggers.fire_due); the landing scan (every
FLOWFORGE_LANDING_SCAN_SECONDS) and the schedule sync with Prefect (every
FLOWFORGE_SCHEDULE_SYNC_SECONDS, and soon after a workflow is applied); queue and send
webhook notifications.
All their state is in the executions store, so a restart loses nothing, and one store
write decides each step, so two API replicas never start or send anything twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import anyio

from flowforge.errors import FlowForgeError
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.notify import deliver_due, notice_ended
from orchestrator.runner import InProcessRunner
from orchestrator.schedules import sync_schedules
from orchestrator.store import Store
from orchestrator.trigger import prefect_api_configured
from orchestrator.triggers import fire_due, scan_landing

log = logging.getLogger(__name__)
TICK_SECONDS = 1.0
QUIET_SECONDS = 60.0  # the same failure is logged again after this long, not every tick


class Automation:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        objects: ObjectStore,
        runner: InProcessRunner | None = None,
    ) -> None:
        self.settings, self.store, self.objects, self.runner = settings, store, objects, runner
        self._last: dict[str, float] = {}
        self._failures: dict[str, tuple[str, float]] = {}

    def sync_soon(self) -> None:
        """The schedules are synced at the next tick (a workflow was applied)."""
        self._last.pop("schedules", None)

    def triggers_tick(self) -> None:
        self._step("triggers", lambda: fire_due(self.settings, self.store, self.runner))

    def housekeeping_tick(self) -> None:
        """The landing scan and the schedule sync: slower (a listing per job, calls to
        Prefect), so in a loop of their own."""
        scan = self.settings.landing_scan_seconds
        if scan > 0 and self._due("scan", scan):
            self._step("scan", lambda: scan_landing(self.settings, self.store, self.objects))
        if prefect_api_configured() and self._due("schedules", self.settings.schedule_sync_seconds):
            self._step("schedules", lambda: sync_schedules(self.settings, self.store))

    def notifications_tick(self) -> None:
        self._step("notifications", lambda: notice_ended(self.settings, self.store))
        self._step("webhooks", lambda: deliver_due(self.settings, self.store))

    async def run(self, stop: asyncio.Event) -> None:
        """The three loops until `stop` is set."""
        ticks = (self.triggers_tick, self.housekeeping_tick, self.notifications_tick)
        await asyncio.gather(*(self._loop(tick, stop) for tick in ticks))

    @staticmethod
    async def _loop(tick: Callable[[], None], stop: asyncio.Event) -> None:
        while not stop.is_set():
            await anyio.to_thread.run_sync(tick)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_SECONDS)

    def _due(self, name: str, every: float) -> bool:
        now = time.monotonic()
        if now - self._last.get(name, -every) < every:
            return False
        self._last[name] = now
        return True

    def _step(self, name: str, work: Callable[[], Any]) -> None:
        """Runs one step; a failure (the store, S3 or Prefect down) is logged, once a
        minute while it lasts, and the loop goes on."""
        try:
            work()
        except Exception as exc:
            message = (
                exc.message if isinstance(exc, FlowForgeError) else f"{type(exc).__name__}: {exc}"
            )
            last, when = self._failures.get(name, ("", 0.0))
            if message != last or time.monotonic() - when > QUIET_SECONDS:
                log.warning("automation: %s failed: %s", name, message[:300])
                self._failures[name] = (message, time.monotonic())
        else:
            self._failures.pop(name, None)
