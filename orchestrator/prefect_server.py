"""A local Prefect server as a child process: its own PREFECT_HOME and SQLite, a free port,
and its scheduler (job schedules and the retention deployment create their flow runs).

One server per stack (the demo, `flowforge up`, a test session): Prefect's ephemeral
in-process API shares one SQLite file between processes and then fails with "database is
locked" under concurrent runs, so we start one real server and point everything at it.

Its UI is told where its API is (PREFECT_SERVER_UI_API_URL): otherwise it looks on port
4200 whatever port the server has. The background services FlowForge does not use are off
or slowed (IDLE_SERVICES): an idle server then costs about 1 % of a core, not 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

from flowforge.embedded import pick_ports
from flowforge.processes import Started, stop_process_group, wait_ready

# What FlowForge's flow runs need stays: the scheduler (job schedules, the maintenance
# cron) at a slower pace; flow runs are never paused and "late" is only a name here; the
# event persister and task-run recorder keep the UI's timeline; cancelling a run,
# concurrency leases and old-event vacuuming keep working, at a slower pace.
IDLE_SERVICES = {
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",  # "Late" is only a name here
    "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",  # flows never pause
    "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",  # no workers or work pools
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",  # no automations
    "PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_LOOP_SECONDS": "60",
    "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "60",
    "PREFECT_SERVER_SERVICES_CLEANUP_RECONCILER_LOOP_SECONDS": "60",
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "60",
    "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "60",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


class PrefectServer(Started):
    def __init__(self, home: Path, port: int | None = None, ui: bool = False) -> None:
        self.home = Path(home)
        self.port = port or pick_ports()["s3.port"]
        self.ui = ui
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_env(self) -> dict[str, str]:
        """What a process needs to use this server (flows, workers, `prefect` commands)."""
        return {"PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.home / "client")}

    def start(self, timeout: float = 180.0) -> Self:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **IDLE_SERVICES,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_UI_ENABLED": "true" if self.ui else "false",
            "PREFECT_SERVER_UI_API_URL": self.api_url,
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": (
                f"sqlite+aiosqlite:///{self.home / 'prefect.db'}"
            ),
            "PREFECT_SERVER_DATABASE_TIMEOUT": "30",
            "PREFECT_LOGGING_SERVER_LEVEL": "WARNING",
        }
        env.pop("PREFECT_API_URL", None)
        env.pop("PREFECT_UI_API_URL", None)  # the same setting by its old name
        log = (self.home / "server.log").open("ab")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--analytics-off",
            ],  # fmt: skip
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.home,
        )
        log.close()
        try:
            wait_ready(self._process, self._healthy, timeout, "the Prefect server",
                       self.home / "server.log", interval=0.3)  # fmt: skip
        except RuntimeError:
            self.stop()
            raise
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as reply:  # noqa: S310
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        stop_process_group(process, timeout)


def flush_clients(timeout: float = 10.0) -> None:
    """Sends this process's buffered run logs and events; call before stopping the server."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout)
    EventsWorker.drain_all(timeout=timeout)


def quiet_console(level: int = 30) -> None:
    """Keeps Prefect's own console lines (run names, 'View at ...') off a CLI's display,
    while run logs still go to the API."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, PrefectConsoleHandler):
                handler.setLevel(level)
