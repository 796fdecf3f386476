"""Following a layer's progress while its unary call runs, recorded at most once a `interval`.

`watching()` opens the service's Watch stream in a thread beside the call and hands each
report to a Throttle, which writes the newest one when `interval` has passed since its
last write (no write storm however fast the service reports) and the one still waiting
when the call ends, so the step keeps the last progress it reached. Progress is an aid:
a Watch that fails or a write that fails never fails the layer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from flowforge.v1 import common_pb2
from flowforge.wire import progress_from_proto

log = logging.getLogger(__name__)
FINAL_REPORT_SECONDS = 1.0
JOIN_SECONDS = 5.0

Record = Callable[[dict[str, Any]], Any]


class Throttle:
    """Writes the newest value offered at most once per `interval` of `clock`."""

    def __init__(
        self, record: Record, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._record, self._interval, self._clock = record, interval, clock
        self._last: float | None = None
        self._pending: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def offer(self, value: dict[str, Any]) -> None:
        with self._lock:
            self._pending = value
            now = self._clock()
            if self._last is None or now - self._last >= self._interval:
                self._write(now)

    def flush(self) -> None:
        """Writes the value still waiting, if any (the last one before the end)."""
        with self._lock:
            if self._pending is not None:
                self._write(self._clock())

    def _write(self, now: float) -> None:
        value, self._pending, self._last = self._pending, None, now
        try:
            self._record(value)  # type: ignore[arg-type]
        except Exception:  # the store is down: the next report tries again
            log.warning("could not record a progress report", exc_info=True)


@contextlib.contextmanager
def watching(
    watch: Callable[..., Any],
    request: common_pb2.WatchRequest,
    record: Record,
    interval: float,
    timeout: float,
    metadata: Any = (),
) -> Iterator[None]:
    """Follows `watch(request)` (a stub's server-streaming Watch) in a thread while the
    body runs; on the way out the stream is cancelled and the last report written."""
    throttle = Throttle(record, interval)
    lock = threading.Lock()
    state: dict[str, Any] = {"call": None, "stopped": False}

    def follow() -> None:
        try:
            with lock:
                if state["stopped"]:
                    return
                call = state["call"] = watch(request, timeout=timeout, metadata=metadata)
            for message in call:
                throttle.offer(progress_from_proto(message))  # the last: where it ended
                if message.done:
                    return
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.NOT_FOUND):
                log.info("progress stream ended: %s", exc.code().name)
        except Exception:
            log.warning("progress stream failed", exc_info=True)

    thread = threading.Thread(target=follow, name="progress-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        # The service sends its last report (committing, then done) as the call returns:
        # let the stream deliver it before cancelling, for a moment at most.
        thread.join(FINAL_REPORT_SECONDS)
        with lock:
            state["stopped"] = True
            if state["call"] is not None:
                state["call"].cancel()
        thread.join(JOIN_SECONDS)
        throttle.flush()
