"""`flowforge up` as a user starts it, for the tests: a clean environment, a state folder
of its own, its output in a file; the addresses it prints; what is left once it stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

READY = "In another shell"  # up's last line, printed once everything answers


class UpProcess:
    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.state = folder / "state"
        self.log = folder / "up.log"
        clean = {
            k: v for k, v in os.environ.items() if not k.startswith(("FLOWFORGE_", "PREFECT_"))
        }
        environ = clean | {"HOME": str(folder), "COLUMNS": "200"} | (env or {})
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "up", *args],
                env=environ | {"FLOWFORGE_STATE_DIR": str(self.state)},
                cwd=folder,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def printed(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 180) -> str:
        """What it printed once it says everything is up; fails if it exits first."""
        deadline = time.monotonic() + timeout
        while READY not in self.printed:
            assert self.process.poll() is None, self.printed
            assert time.monotonic() < deadline, self.printed
            time.sleep(0.5)
        return self.printed

    def address(self, label: str) -> str:
        """The address printed after `label` (e.g. "FlowForge UI")."""
        found = re.search(rf"^{re.escape(label)}\s+(\S+)", self.printed, re.MULTILINE)
        assert found, f"{label!r} not printed:\n{self.printed}"
        return found.group(1).rstrip("/")

    def stop(self, how: signal.Signals = signal.SIGINT, timeout: float = 90) -> int:
        """Ctrl-C (SIGINT) or SIGTERM; its exit code once it has stopped."""
        if self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError(f"up did not stop on {how.name}:\n{self.printed}") from None
        return self.process.returncode

    def leftovers(self) -> list[str]:
        """Processes still running that were started for this folder (its state, its code)."""
        found = []
        for p in psutil.process_iter(["cmdline", "environ"]):  # None where unreadable
            command = " ".join(p.info["cmdline"] or [])
            environ = p.info["environ"] or {}
            if str(self.folder) in command or environ.get("FLOWFORGE_STATE_DIR") == str(self.state):
                found.append(command)
        return found
