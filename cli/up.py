"""`flowforge up`: the whole product on one machine until Ctrl-C: the embedded stack, a
Prefect server (its UI), the served deployment and the executions API with the web UI.
State lives in FLOWFORGE_STATE_DIR (default .flowforge/)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from rich.console import Console

from cli.analyst import duckdb_snippet, gold_tables
from cli.stack import EmbeddedStack, environ_with, seed
from flowforge.embedded import pick_ports, port_free
from flowforge.logs import RotatedOutput, configure_logging
from flowforge.processes import wait_ready
from flowforge.settings import Settings
from orchestrator.deployment import FULL_NAME, MAINTENANCE_NAME, WORKFLOW_NAME, maintenance_cron
from orchestrator.store import Store

API_PORT = 8000  # the web UI's usual address; another free port when it is taken


def run_up(settings: Settings, sample: bool = True, api_port: int | None = None) -> int:
    console = Console()
    configure_logging(settings.model_copy(update={"log_level": "WARNING", "log_format": "text"}))
    state = settings.state_dir.resolve()
    if api_port is not None and not port_free(api_port):
        console.print(f"[red]port {api_port} is in use: choose another with --api-port[/]")
        return 1
    port = api_port or (API_PORT if port_free(API_PORT) else pick_ports()["s3.port"])
    console.print(f"[bold]FlowForge up[/]: starting in {state} (Ctrl-C stops it)")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with EmbeddedStack(settings, state, prefect=True, prefect_ui=True) as stack:
        assert stack.prefect is not None
        workflow = None
        if sample:
            store = Store.open(stack.settings)
            try:
                workflow = seed(stack.settings, store)
            finally:
                store.close()
        env_file = stack.write_env_file()
        # One format in the files: the children's lines as text, like their flow runs'.
        env = {"FLOWFORGE_LOG_FORMAT": "text"} | environ_with(stack.env())
        children: list[Child] = []
        try:
            deployment = Child("the deployment", ["serve", "deployment"], env, state)
            children.append(deployment)
            api = Child("the API", ["serve", "api", "--port", str(port)], env, state, "api.log")
            children.append(api)
            served = (
                wait_for_deployment(n, deployment.process)
                for n in (FULL_NAME, WORKFLOW_NAME, MAINTENANCE_NAME)
            )
            if not all(served):
                console.print(f"[red]the deployment was not served; see {deployment.log_path}[/]")
                return 1
            ui = f"http://127.0.0.1:{port}/"
            healthy = lambda: answers(f"{ui}healthz")  # noqa: E731
            try:
                wait_ready(api.process, healthy, 60, "the API", api.log_path)
            except RuntimeError as exc:
                console.print(f"[red]{exc}[/]")
                return 1
            console.print(f"\n[bold]FlowForge UI        {ui}[/]  (API under /api, docs at /docs)")
            for line in (
                f"Prefect UI          {stack.prefect.ui_url}",
                f"Prefect API         {stack.prefect.api_url}",
                f"S3 (SeaweedFS)      {stack.settings.s3_endpoint_url} {settings.s3_bucket}",
                f"bronze service      {stack.settings.bronze_address}",
                f"silver service      {stack.settings.silver_address}",
                f"gold service        {stack.settings.gold_address}",
                f"deployment          {FULL_NAME} (log: {deployment.log_path})",
                f"workflow deployment {WORKFLOW_NAME}",
                f"maintenance         {MAINTENANCE_NAME} "
                f"(cron: {maintenance_cron(settings) or 'off'}, UTC)",
                f"API log             {api.log_path}",
                f"executions store    {state / 'flowforge.db'}",
                f"sample workflow     {workflow.id if workflow else 'none (--no-sample)'}",
            ):
                console.print(line)
            if workflow is not None:
                analyst = stack.settings.s3_analyst_access_key_id
                console.print(
                    f"\nRead the gold tables in DuckDB as the read-only analyst ({analyst}: "
                    "silver/ and gold/ only), once a run has written them:"
                )
                snippet = duckdb_snippet(stack.settings, gold_tables(workflow))
                console.print(snippet, markup=False, highlight=False, soft_wrap=True)
            job = "--workflow W --job J"
            if workflow is not None:
                job = f"--workflow {workflow.id} --job customers"
            console.print(
                f"\nIn another shell: [bold]set -a; . {env_file}; set +a[/] then e.g.\n"
                f"  flowforge run {job}"
            )
            for child in children:
                child.watch(stopping)
            while not stopping.wait(60):
                pass
            ended = [c.name for c in children if c.process.poll() is not None]
            if ended:
                console.print(f"[red]{', '.join(ended)} exited; see its log in {state}[/]")
                return 1
        except KeyboardInterrupt:
            pass
        finally:
            console.print("stopping ...")
            stopping.set()
            for child in reversed(children):
                child.stop()
    return 0


class Child:
    """A FlowForge server `up` runs as a process of its own session (Ctrl-C in the terminal
    reaches `up` alone, which stops it in order), its output in a rotated log under the
    state folder (10 MB, then .1 to .3)."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], state: Path, log: str = ""
    ) -> None:
        self.name = name
        self.log_path = state / (log or f"{args[-1]}.log")
        self._log = RotatedOutput(self.log_path)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", *args],
            env=env,
            stdout=self._log.fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._log.close()

    def watch(self, stopping: threading.Event) -> None:
        """Sets `stopping` when the process exits (a thread waits on it: no polling)."""

        def wait() -> None:
            self.process.wait()
            stopping.set()

        threading.Thread(target=wait, name=f"watch {self.name}", daemon=True).start()

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, SIGKILL after `timeout` s; then the rest of its process group (the
        deployment's fork server leaves only once it notices the runner is gone)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        end_group(self.process.pid)
        self._log.wait(5)  # its last lines written


def end_group(leader: int, timeout: float = 5) -> None:
    """SIGTERM to what is left of a process group, SIGKILL to what outlives `timeout`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.killpg(leader, 0)  # ProcessLookupError once none is left
            time.sleep(0.1)
        os.killpg(leader, signal.SIGKILL)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 (loopback)
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


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
