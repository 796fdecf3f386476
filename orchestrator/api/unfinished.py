"""Multipart uploads that failed requests left open on the object store, aborted.

A file upload that fails (refused, cut off, the store failing) has its multipart upload
aborted by boto3. When the store itself is what failed, that abort fails too, and the
parts already sent stay stored, unseen and never collected. The key is kept here and its
open uploads are aborted once the store answers again (sweep(), called periodically)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Iterator

from fastapi.concurrency import run_in_threadpool

from flowforge.errors import FlowForgeError
from flowforge.storage import ObjectStore

log = logging.getLogger(__name__)


class UnfinishedUploads:
    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._writing: Counter[str] = Counter()

    @contextlib.contextmanager
    def writing(self, key: str) -> Iterator[None]:
        """Marks `key` as being uploaded: a sweep leaves its open upload alone meanwhile."""
        with self._lock:
            self._writing[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._writing[key] -= 1
                if not self._writing[key]:
                    del self._writing[key]

    def abort(self, key: str) -> None:
        """After a failed upload of `key`: aborts what it left open, or remembers it."""
        try:
            aborted = self._objects.abort_uploads(key)
        except FlowForgeError as exc:
            with self._lock:
                self._pending.add(key)
            detail = {"key": key, "error": exc.message}
            log.warning("upload left open until the store answers", extra=detail)
            return
        with self._lock:
            self._pending.discard(key)
        if aborted:
            log.info("aborted an unfinished upload", extra={"key": key, "uploads": aborted})

    def pending(self) -> list[str]:
        """The keys to abort, but those being uploaded again right now."""
        with self._lock:
            return sorted(k for k in self._pending if not self._writing[k])

    def sweep(self) -> None:
        for key in self.pending():
            self.abort(key)

    async def keep_sweeping(self, stop: asyncio.Event, seconds: float) -> None:
        """Runs until `stop` is set, every `seconds`."""
        while not stop.is_set():
            if self.pending():
                await run_in_threadpool(self.sweep)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
