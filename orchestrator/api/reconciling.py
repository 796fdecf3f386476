"""Keeping the API's view true to Prefect: reconcile() in a background poll and, at most
once a second, when a request reads an active execution. With no execution active there is
nothing to reconcile: Prefect is not asked, and the poll backs off to IDLE_SECONDS (a
trigger through the API wakes it)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from fastapi.concurrency import run_in_threadpool

from flowforge.settings import Settings
from orchestrator.api.activity import Activity, Backoff
from orchestrator.liveness import crash_silent
from orchestrator.reconcile import reconcile
from orchestrator.store import Store
from orchestrator.trigger import prefect_api_configured

log = logging.getLogger(__name__)

IDLE_SECONDS = 30.0


class Reconciler:
    def __init__(self, settings: Settings, store: Store, min_interval: float = 1.0) -> None:
        self._settings = settings
        self._store = store
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._last = 0.0

    def now(self) -> bool:
        """Ends active executions whose flow run ended in Prefect (throttled, never raises).
        Whether any execution is active (True when it could not tell)."""
        if time.monotonic() - self._last < self._min_interval:
            return True
        if not self._lock.acquire(blocking=False):
            return True  # another request is reconciling right now
        try:
            self._last = time.monotonic()
            if not self._any_active():
                return False
            if prefect_api_configured():
                reconcile(self._settings, self._store)
            else:  # flows run in this process: only the heartbeat check applies
                crash_silent(self._settings, self._store, None)
            return True
        except Exception as exc:  # Prefect down: the store's view stands until it is back
            log.warning("reconcile failed", extra={"error": str(exc)[:200]})
            return True
        finally:
            self._lock.release()

    def _any_active(self) -> bool:
        return any(self._store.count_executions(status=s) for s in ("PENDING", "RUNNING"))

    async def poll(self, stop: asyncio.Event, activity: Activity) -> None:
        """Runs until `stop` is set: every FLOWFORGE_API_RECONCILE_SECONDS while an execution
        is active, backing off to IDLE_SECONDS while none is, woken by `activity`."""
        pace = Backoff(self._settings.api_reconcile_seconds, IDLE_SECONDS)
        while not stop.is_set():
            busy = await run_in_threadpool(self.now)
            await activity.wait(pace.next(busy), stop)
