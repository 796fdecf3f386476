"""Keeping the API's view true to Prefect: reconcile() in a background poll and, at most
once a second, when a request reads an active execution."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

from fastapi.concurrency import run_in_threadpool

from flowforge.settings import Settings
from orchestrator.liveness import crash_silent
from orchestrator.reconcile import reconcile
from orchestrator.store import Store
from orchestrator.trigger import prefect_api_configured

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(self, settings: Settings, store: Store, min_interval: float = 1.0) -> None:
        self._settings = settings
        self._store = store
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._last = 0.0

    def now(self) -> None:
        """Ends active executions whose flow run ended in Prefect (throttled, never raises)."""
        if time.monotonic() - self._last < self._min_interval:
            return
        if not self._lock.acquire(blocking=False):
            return  # another request is reconciling right now
        try:
            self._last = time.monotonic()
            if prefect_api_configured():
                reconcile(self._settings, self._store)
            else:  # flows run in this process: only the heartbeat check applies
                crash_silent(self._settings, self._store, None)
        except Exception as exc:  # Prefect down: the store's view stands until it is back
            log.warning("reconcile failed", extra={"error": str(exc)[:200]})
        finally:
            self._lock.release()

    async def poll(self, stop: asyncio.Event) -> None:
        """Runs until `stop` is set, every FLOWFORGE_API_RECONCILE_SECONDS."""
        while not stop.is_set():
            await run_in_threadpool(self.now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.api_reconcile_seconds)
