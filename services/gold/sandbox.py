"""Runs each gold build in a fresh process of its own, under an OS memory limit and a kill timer.

DuckDB's memory_limit does not bound one huge value (`repeat('x', 3e9)`), and a query busy
inside one long function call never sees an interrupt: only a separate process with an
address-space limit, killed by its parent when time is up, bounds both. The process is
`python -m services.gold.worker` (fork and exec: nothing of the gRPC server's threads is
copied, and its environment holds no secret), started before a build needs it so a build
does not wait for Python and DuckDB to load. Its reports are JSON lines, never pickles:
the server trusts nothing the process running untrusted SQL sends beyond plain data.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowforge.duckdb_s3 import scrub
from flowforge.errors import (
    Cancelled,
    Conflict,
    DeadlineExceeded,
    FailedPrecondition,
    FlowForgeError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from flowforge.runtime import Deadline
from flowforge.settings import Settings, byte_size
from services.gold.build_process import BuildProcess
from services.gold.duckdb_errors import process_out_of_memory
from services.gold.engine import ModelRun, Source, model_timed_out

log = logging.getLogger("flowforge.gold")

# After a model's timeout the process has this long to stop by itself (the interrupt
# reaches DuckDB between two function calls); then it is killed.
KILL_GRACE_SECONDS = 1.0
_POLL_SECONDS = 0.05
_ERRORS = {
    cls.status: cls
    for cls in (
        InvalidArgument,
        NotFound,
        FailedPrecondition,
        Conflict,
        Unavailable,
        DeadlineExceeded,
        ResourceExhausted,
        Cancelled,
    )
}
# What a process that died of an allocation failure leaves on its stderr.
_MEMORY_SIGNS = ("bad_alloc", "memoryerror", "cannot allocate memory", "out of memory")


@dataclass(frozen=True)
class BuildJob:
    """What a build's process needs: plain data, no connections, no server objects.

    `models` are (name, checked SQL, the object key to write); `profile_key`, when set, is
    where the built-in profile of `silver` goes; `model_schema`, when set, makes each model
    a view `{model_schema}.{name}` for the models after it (a workflow's `gold`)."""

    views: dict[str, Source]
    models: list[tuple[str, str, str]]
    preview_rows: int
    profile_key: str | None = None
    model_schema: str | None = None


class Sandbox:
    """Build slots (FLOWFORGE_GOLD_MAX_CONCURRENT_BUILDS) and one warm process in waiting."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.slots = settings.gold_max_concurrent_builds or os.cpu_count() or 1
        self._free = threading.BoundedSemaphore(self.slots)
        base = settings.gold_temp_directory or settings.state_dir / "gold-spill"
        self.spill_base = base.resolve()
        self._lock = threading.Lock()
        self._warm: BuildProcess | None = None
        self._closed = False
        self._refill()

    def run(
        self,
        job: BuildJob,
        deadline: Deadline,
        on_model: Callable[[str | None, int], None] | None = None,
    ) -> list[ModelRun]:
        """Runs the build in its own process; `on_model(name, built)` hears each model
        start (its name) and end (None), with how many were built so far."""
        with self._slot(deadline):
            self.spill_base.mkdir(parents=True, exist_ok=True)
            spill = Path(tempfile.mkdtemp(prefix="build-", dir=self.spill_base))
            process = self._take()
            try:
                process.send(self._payload(job, spill))
                return self._supervise(process, spill, deadline, on_model or _ignore)
            finally:
                process.stop()
                shutil.rmtree(spill, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            warm, self._warm = self._warm, None
        if warm is not None:
            warm.stop()

    @contextlib.contextmanager
    def _slot(self, deadline: Deadline) -> Iterator[None]:
        # Over the cap a build waits for as long as its deadline (or its caller) allows.
        while not self._free.acquire(timeout=_POLL_SECONDS * 2):
            deadline.check(
                f"waiting for one of the {self.slots} gold build slots "
                f"(FLOWFORGE_GOLD_MAX_CONCURRENT_BUILDS={self.slots})"
            )
        try:
            yield
        finally:
            self._free.release()

    def _take(self) -> BuildProcess:
        """The warm process if it is still alive, else a new one; a new one waits after it."""
        with self._lock:
            process, self._warm = self._warm, None
        if process is None or not process.alive():
            if process is not None:
                process.stop()
            process = BuildProcess.start()
        self._refill()
        return process

    def _refill(self) -> None:
        with self._lock:
            if self._closed or self._warm is not None:
                return
            self._warm = BuildProcess.start()

    def _payload(self, job: BuildJob, spill: Path) -> dict[str, Any]:
        settings = self._settings
        secret = settings.s3_secret_access_key
        return {
            "settings": {
                **settings.model_dump(mode="json", include=_WORKER_SETTINGS),
                "s3_secret_access_key": secret.get_secret_value() if secret else None,
            },
            "process_memory_limit": byte_size(settings.gold_process_memory_limit),
            "views": {
                name: {"keys": view.keys, "columns": view.columns}
                for name, view in job.views.items()
            },
            "models": [{"name": n, "sql": sql, "key": key} for n, sql, key in job.models],
            "profile_key": job.profile_key,
            "model_schema": job.model_schema,
            "spill": str(spill),
            "preview_rows": job.preview_rows,
        }

    def _supervise(
        self,
        process: BuildProcess,
        spill: Path,
        deadline: Deadline,
        on_model: Callable[[str | None, int], None],
    ) -> list[ModelRun]:
        settings = self._settings
        timeout = settings.gold_model_timeout_seconds
        log.info("gold build started", extra={"pid": process.pid, "spill": str(spill)})
        runs: list[ModelRun] = []
        what, started = "setting up the inputs", time.monotonic()
        while True:
            deadline.check(f"running {what}")
            if time.monotonic() - started > timeout + KILL_GRACE_SECONDS:
                raise model_timed_out(what, timeout)  # the caller's `finally` kills it
            for event in process.reports(_POLL_SECONDS):
                kind = event.get("event")
                if kind == "step":
                    what, started = f"model {event['model']!r}", time.monotonic()
                    process.peaks.reset()
                    on_model(str(event["model"]), len(runs))
                    log.info(
                        "gold model started", extra={"model": event["model"], "pid": process.pid}
                    )
                elif kind == "built":
                    runs.append(model_run(event["run"] | {"seconds": time.monotonic() - started}))
                    on_model(None, len(runs))
                    log.info("gold model built", extra=self._figures(runs[-1], process, started))
                elif kind == "done":
                    return runs
                elif kind == "error":
                    raise _ERRORS.get(event["status"], FlowForgeError)(
                        str(event["message"]), retryable=bool(event["retryable"])
                    )
                else:
                    self._log_stderr(process, f"failed while {what}")
                    raise RuntimeError(f"the gold build's process failed while {what}")
            process.sample(spill)
            if process.finished():
                raise self._died(process, what)

    def _died(self, process: BuildProcess, what: str) -> Exception:
        """Why a process ended without reporting: an allocation failure, or a crash."""
        code = process.wait()
        signs = process.stderr_tail().lower()
        limit = byte_size(self._settings.gold_process_memory_limit)
        killed = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        if any(sign in signs for sign in _MEMORY_SIGNS) or process.peaks.vms > 0.9 * limit:
            return process_out_of_memory(what, self._settings, f"its process ended ({killed})")
        if code == -signal.SIGKILL:
            # Not this service (it says so when it kills): the kernel's OOM killer short of
            # memory for the whole machine, or an operator. Another attempt may well pass.
            return Unavailable(
                f"the gold build's process was killed from outside (SIGKILL) while {what}: "
                "the machine may be short of memory"
            )
        self._log_stderr(process, f"ended ({killed}) while {what}")
        return RuntimeError(f"the gold build's process ended ({killed}) while {what}")

    def _log_stderr(self, process: BuildProcess, what: str) -> None:
        process.wait()
        stderr = scrub(process.stderr_tail(), self._settings)
        log.error(f"gold build process {what}", extra={"pid": process.pid, "stderr": stderr})

    @staticmethod
    def _figures(run: ModelRun, process: BuildProcess, started: float) -> dict[str, Any]:
        return {
            "model": run.name,
            "rows": run.rows,
            "size_bytes": run.size_bytes,
            "seconds": round(time.monotonic() - started, 3),
            "peak_rss_mb": process.peaks.rss >> 20,
            "peak_spill_mb": round(process.peaks.spill / (1 << 20), 1),
            "pid": process.pid,
        }


_WORKER_SETTINGS = {
    "s3_endpoint_url",
    "s3_region",
    "s3_bucket",
    "s3_access_key_id",
    "s3_connect_timeout_seconds",
    "s3_read_timeout_seconds",
    "s3_max_attempts",
    "gold_memory_limit",
    "gold_process_memory_limit",
    "gold_threads",
    "gold_max_temp_size",
    "gold_model_timeout_seconds",
}


def model_run(data: dict[str, Any]) -> ModelRun:
    return ModelRun(
        name=str(data["name"]),
        key=str(data["key"]),
        rows=int(data["rows"]),
        size_bytes=int(data["size_bytes"]),
        columns=[(str(n), str(t)) for n, t in data["columns"]],
        preview_rows=[str(row) for row in data["preview_rows"]],
        warnings=[str(w) for w in data.get("warnings", [])],
        seconds=float(data.get("seconds", 0.0)),
    )


def _ignore(name: str | None, built: int) -> None:
    """The model callback of a build nobody watches."""
