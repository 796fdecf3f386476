"""How far each run of a layer has got: an in-memory board the layer's core writes to.

A service keeps one ProgressBoard. A run opens its entry with `board.run(...)` and gets a
Reporter, a cheap callable its core calls at natural points (a chunk read, a bucket
deduplicated, a model built); the entry ends when the run does. `follow()` reads one
run's entry as it changes, at most one report per `interval`, until the run ends (the
services' Watch RPC streams it). The board is bounded: at most `max_runs` entries, and an
ended run's entry goes `keep_seconds` after it ended. Nothing here knows of gRPC.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from flowforge.errors import NotFound

KEEP_SECONDS = 300.0
MAX_RUNS = 256
START_WAIT_SECONDS = 10.0  # how long a watch of an unknown run waits for it to start
WATCH_INTERVAL_SECONDS = 0.2  # at most five reports a second per watch
_COUNTS = (
    "bytes_read",
    "bytes_total",
    "rows",
    "rows_total",
    "files_done",
    "files_total",
    "models_done",
    "models_total",
)


@dataclass(frozen=True)
class Snapshot:
    """One run's progress as last reported; a count the layer does not know is 0."""

    layer: str
    workflow_id: str
    job_id: str
    run_id: str
    phase: str = "starting"
    bytes_read: int = 0
    bytes_total: int = 0
    rows: int = 0
    rows_total: int = 0
    files_done: int = 0
    files_total: int = 0
    models_done: int = 0
    models_total: int = 0
    done: bool = False
    failed: bool = False
    sequence: int = 0  # grows with every report

    def counts(self) -> dict[str, Any]:
        """The phase and the counts, as plain values (what the flow records)."""
        return {"phase": self.phase} | {name: getattr(self, name) for name in _COUNTS}


class Reporter(Protocol):
    """What a layer's core calls: the phase and any counts that changed."""

    def __call__(self, phase: str | None = None, **counts: int) -> None: ...


def ignore(phase: str | None = None, **counts: int) -> None:
    """The reporter of a run nobody watches (tests, other callers of the cores)."""


@dataclass
class _Entry:
    snapshot: Snapshot
    ended_at: float | None = None


class ProgressBoard:
    """Thread-safe: cores report from their request threads, watches read from theirs."""

    def __init__(
        self,
        layer: str,
        keep_seconds: float = KEEP_SECONDS,
        max_runs: int = MAX_RUNS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.layer = layer
        self._keep, self._max, self._clock = keep_seconds, max_runs, clock
        self._entries: OrderedDict[tuple[str, str, str], _Entry] = OrderedDict()
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def run(self, workflow_id: str, job_id: str, run_id: str) -> Iterator[Reporter]:
        """Opens the run's entry (a repeat of a run id starts it afresh) and ends it on the
        way out, failed when an exception leaves."""
        key = (workflow_id, job_id, run_id)
        with self._changed:
            self._prune()
            self._entries.pop(key, None)
            self._entries[key] = _Entry(Snapshot(self.layer, workflow_id, job_id, run_id))
            self._changed.notify_all()

        def report(phase: str | None = None, **counts: int) -> None:
            unknown = set(counts) - set(_COUNTS)
            if unknown:
                raise TypeError(f"unknown progress fields: {sorted(unknown)}")
            self._update(key, phase, counts)

        try:
            yield report
        except BaseException:
            self._end(key, failed=True)
            raise
        self._end(key, failed=False)

    def _update(self, key: tuple[str, str, str], phase: str | None, counts: dict[str, int]) -> None:
        with self._changed:
            entry = self._entries.get(key)
            if entry is None or entry.ended_at is not None:
                return
            old = entry.snapshot
            changes: dict[str, Any] = {"phase": phase or old.phase, **counts}
            entry.snapshot = replace(old, sequence=old.sequence + 1, **changes)
            self._changed.notify_all()

    def _end(self, key: tuple[str, str, str], failed: bool) -> None:
        with self._changed:
            entry = self._entries.get(key)
            if entry is None:
                return
            old = entry.snapshot
            entry.snapshot = replace(old, done=True, failed=failed, sequence=old.sequence + 1)
            entry.ended_at = self._clock()
            self._changed.notify_all()

    def _prune(self) -> None:
        """Drops ended runs kept long enough, then the oldest while over the bound (ended
        runs first). Called with the lock held."""
        now = self._clock()
        for key in [k for k, e in self._entries.items() if e.ended_at is not None]:
            if now - self._entries[key].ended_at >= self._keep:  # type: ignore[operator]
                del self._entries[key]
        while len(self._entries) >= self._max:
            ended = next((k for k, e in self._entries.items() if e.ended_at is not None), None)
            del self._entries[ended if ended is not None else next(iter(self._entries))]

    def get(self, workflow_id: str, job_id: str, run_id: str) -> Snapshot | None:
        with self._changed:
            self._prune()
            entry = self._entries.get((workflow_id, job_id, run_id))
            return entry.snapshot if entry else None

    def __len__(self) -> int:
        with self._changed:
            return len(self._entries)

    def wait(
        self, workflow_id: str, job_id: str, run_id: str, after: int, timeout: float
    ) -> Snapshot | None:
        """The run's snapshot once its sequence passes `after` (-1: once it exists), or as
        it is after `timeout` seconds (None: no such run)."""
        key = (workflow_id, job_id, run_id)

        def ready() -> bool:
            entry = self._entries.get(key)
            return entry is not None and entry.snapshot.sequence > after

        with self._changed:
            self._changed.wait_for(ready, timeout)
            entry = self._entries.get(key)
            return entry.snapshot if entry else None


def follow(
    board: ProgressBoard,
    workflow_id: str,
    job_id: str,
    run_id: str,
    active: Callable[[], bool] = lambda: True,
    start_wait: float = START_WAIT_SECONDS,
    interval: float = WATCH_INTERVAL_SECONDS,
    pause: Callable[[float], None] = time.sleep,
) -> Iterator[Snapshot]:
    """The run's snapshots as they change, at most one per `interval`, ending with the one
    that says it is done. NotFound when the run has not started within `start_wait`
    seconds; ends early once `active()` says the watcher left."""
    snapshot = board.wait(workflow_id, job_id, run_id, -1, start_wait)
    if snapshot is None:
        raise NotFound(
            f"no {board.layer} run {run_id!r} of {workflow_id}/{job_id} started within "
            f"{start_wait:g} s"
        )
    while True:
        yield snapshot
        if snapshot.done:
            return
        pause(interval)
        seen = snapshot.sequence
        while active():
            found = board.wait(workflow_id, job_id, run_id, seen, 1.0)
            if found is None:  # dropped from the board (over its bound)
                return
            if found.sequence > seen:
                snapshot = found
                break
        else:
            return
