"""`flowforge up`: the embedded stack kept running with a Prefect server (UI) and the served
deployment, until Ctrl-C. State lives in FLOWFORGE_STATE_DIR (default .flowforge/)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

from rich.console import Console

from cli.stack import EmbeddedStack, environ_with, seed
from flowforge.logs import RotatedOutput, configure_logging
from flowforge.settings import Settings
from orchestrator.deployment import FULL_NAME, MAINTENANCE_NAME, maintenance_cron
from orchestrator.store import Store


def run_up(settings: Settings) -> int:
    console = Console()
    configure_logging(settings.model_copy(update={"log_level": "WARNING", "log_format": "text"}))
    state = settings.state_dir.resolve()
    console.print(f"[bold]FlowForge up[/]: starting the stack in {state} (Ctrl-C stops it)")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with EmbeddedStack(settings, state, prefect=True, prefect_ui=True) as stack:
        store = Store.open(stack.settings)
        workflow = seed(stack.settings, store)
        env_file = stack.write_env_file()
        log = RotatedOutput(state / "deployment.log")  # 10 MB, then .1 to .3
        # One format in the file: the runner's lines as text, like its flow runs' (Prefect's).
        env = {"FLOWFORGE_LOG_FORMAT": "text"} | environ_with(stack.env())
        worker = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "deployment"],
            env=env,
            stdout=log.fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            assert stack.prefect is not None
            if not all(wait_for_deployment(n, worker) for n in (FULL_NAME, MAINTENANCE_NAME)):
                console.print(f"[red]the deployment was not served; see {state}/deployment.log[/]")
                return 1
            for line in (
                f"S3 (SeaweedFS)      {stack.settings.s3_endpoint_url} {settings.s3_bucket}",
                f"bronze service      {stack.settings.bronze_address}",
                f"silver service      {stack.settings.silver_address}",
                f"gold service        {stack.settings.gold_address}",
                f"Prefect UI          {stack.prefect.ui_url}",
                f"Prefect API         {stack.prefect.api_url}",
                f"deployment          {FULL_NAME} (log: {state / 'deployment.log'})",
                f"maintenance         {MAINTENANCE_NAME} "
                f"(cron: {maintenance_cron(settings) or 'off'}, UTC)",
                f"executions store    {state / 'flowforge.db'}",
                f"sample workflow     {workflow.id}",
            ):
                console.print(line)
            console.print(
                f"\nIn another shell: [bold]set -a; . {env_file}; set +a[/] then e.g.\n"
                f"  flowforge run --workflow {workflow.id} --job customers"
            )
            while not stopping.wait(1.0):
                if worker.poll() is not None:
                    console.print("[red]the deployment process exited; see its log[/]")
                    return 1
        except KeyboardInterrupt:
            pass
        finally:
            console.print("stopping ...")
            worker.terminate()
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            stop_group(worker.pid)
            log.wait(5)  # its last lines written
    return 0


def stop_group(leader: int) -> None:
    """Ends what is left of the worker's process group: its fork server leaves only once it
    notices the worker is gone, which may be after this process (still importing the flows
    when the worker stopped)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing left
        os.killpg(leader, signal.SIGTERM)


def wait_for_deployment(name: str, worker: subprocess.Popen[bytes], timeout: float = 120) -> bool:
    """True once Prefect knows the deployment (the served process registered it)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline and worker.poll() is None:
            try:
                client.read_deployment_by_name(name)
                return True
            except ObjectNotFound:
                time.sleep(0.5)
    return False
