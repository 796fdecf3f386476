"""One gold build's process (services/gold/worker.py) as its parent sees it: pipes and figures."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import psutil

log = logging.getLogger("flowforge.gold")

# One report line at most; a model's preview is bounded far below (engine.MAX_PREVIEW_BYTES).
MAX_REPORT_BYTES = 16 << 20
_STDERR_TAIL = 8 << 10
# The code FlowForge runs, for a process started from anywhere.
_ROOT = str(Path(__file__).resolve().parents[2])
# Only what Python needs: no FLOWFORGE_* keys, so no secret, ever reach untrusted SQL.
_PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")


class Peaks:
    """The largest memory and spill figures sampled since the last reset."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.rss = self.vms = self.spill = 0


class BuildProcess:
    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.peaks = Peaks()
        self._buffer = bytearray()
        self._stderr = bytearray()
        self._reports_closed = False
        self._psutil: psutil.Process | None = None
        self._selector = selectors.DefaultSelector()
        for stream in (popen.stdout, popen.stderr):
            assert stream is not None
            os.set_blocking(stream.fileno(), False)
            self._selector.register(stream, selectors.EVENT_READ)

    @classmethod
    def start(cls) -> BuildProcess:
        env = {key: os.environ[key] for key in _PASSED if key in os.environ}
        # glibc reserves 64 MB of address space per thread arena: with DuckDB's threads that
        # is most of the address-space limit before any data. Two arenas are plenty.
        env |= {"PYTHONPATH": _ROOT, "MALLOC_ARENA_MAX": "2"}
        popen = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "services.gold.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
            start_new_session=True,  # a Ctrl-C meant for the service is the service's to handle
        )
        return cls(popen)

    def send(self, job: dict[str, Any]) -> None:
        """Writes the job on stdin from a helper thread: a large job must not block the
        caller while the process is still loading (it reads stdin once it has)."""
        payload = json.dumps(job).encode() + b"\n"
        stdin = self._popen.stdin
        assert stdin is not None

        def feed(stream: IO[bytes]) -> None:
            with contextlib.suppress(OSError):  # the process died: its reports say why
                stream.write(payload)
                stream.close()

        threading.Thread(target=feed, args=(stdin,), name="gold-job", daemon=True).start()

    def reports(self, timeout: float) -> Iterator[dict[str, Any]]:
        """The complete report lines that arrive within `timeout` (none if none do)."""
        for key, _ in self._selector.select(timeout):
            self._read(key.fileobj)
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            yield json.loads(line)
        if len(self._buffer) > MAX_REPORT_BYTES:
            raise RuntimeError(f"the gold build's process sent a report over {MAX_REPORT_BYTES}")

    def _read(self, stream: Any) -> bool:
        """Reads what is there; False at the end of the stream (then no longer watched)."""
        try:
            chunk = os.read(stream.fileno(), 1 << 16)
        except BlockingIOError:
            return True
        if not chunk:
            self._selector.unregister(stream)
            self._reports_closed |= stream is self._popen.stdout
            return False
        if stream is self._popen.stdout:
            self._buffer += chunk
        else:
            self._stderr = (self._stderr + chunk)[-_STDERR_TAIL:]
        return True

    def finished(self) -> bool:
        """True once the process closed its report pipe (it exited or is exiting)."""
        return self._reports_closed

    def sample(self, spill: Path) -> None:
        with contextlib.suppress(psutil.Error):
            self._psutil = self._psutil or psutil.Process(self.pid)
            memory = self._psutil.memory_info()
            self.peaks.rss = max(self.peaks.rss, memory.rss)
            self.peaks.vms = max(self.peaks.vms, memory.vms)
        with contextlib.suppress(OSError):
            spilled = sum(entry.stat().st_size for entry in os.scandir(spill) if entry.is_file())
            self.peaks.spill = max(self.peaks.spill, spilled)

    def alive(self) -> bool:
        return self._popen.poll() is None

    def wait(self) -> int:
        """The exit status once the process has ended, with the rest of its stderr read."""
        code = self._popen.wait(timeout=30)
        stderr = self._popen.stderr
        if stderr is not None and stderr in [k.fileobj for k in self._selector.get_map().values()]:
            while self._read(stderr):
                pass
        return code

    def stop(self) -> None:
        """Kills the process if it still runs, reaps it and closes the pipes."""
        if self._popen.poll() is None:
            self._popen.kill()
        try:
            self._popen.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a process in uninterruptible I/O; reaped later
            log.warning("gold build process did not exit after SIGKILL", extra={"pid": self.pid})
        self._selector.close()
        for stream in (self._popen.stdin, self._popen.stdout, self._popen.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def stderr_tail(self) -> str:
        return self._stderr.decode(errors="replace")
