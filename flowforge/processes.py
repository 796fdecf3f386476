"""Child servers started in their own process group (SeaweedFS, the Prefect server): waiting
until one answers, stopping it, and start()/stop() as a context manager."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Self


class Started:
    """`with X(...) as x:` runs x.start() and, however the block ends, x.stop()."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def wait_ready(
    process: subprocess.Popen[bytes] | None,
    ready: Callable[[], bool],
    timeout: float,
    what: str,
    log: os.PathLike[str],
    interval: float = 0.2,
) -> None:
    """Polls `ready()` until it holds; RuntimeError naming `what` and its log when the
    process exits first or `timeout` seconds pass (the caller then stops it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited; see {os.fspath(log)}")
        if ready():
            return
        time.sleep(interval)
    raise RuntimeError(f"{what} did not answer within {timeout:.0f}s; see {os.fspath(log)}")


def stop_process_group(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM to the whole group, SIGKILL after `timeout` seconds; a no-op once it has ended."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
