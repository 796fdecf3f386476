"""The orchestrator killed mid-run (SIGKILL): the execution is shown as crashed within a
bounded time, not "running" for ever, and running the job again completes.

The orchestrator here is `flowforge serve deployment` (a Prefect runner that runs each
flow run in a process forked from its fork server), as `flowforge up` and the compose
worker run it. The test itself never reconciles: the killed run is ended by the product
alone (the runner's crash hook, the API's periodic reconcile, `flowforge executions
reconcile`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import httpx
import psutil
import pytest
from prefect.client.orchestration import get_client
from sqlalchemy.exc import OperationalError

from orchestrator.store import ExecutionRecord
from orchestrator.trigger import trigger_execution
from orchestrator.workflows import Workflow
from tests.faults.conftest import FaultStack, one_output_per_layer
from tests.faults.processes import free_port
from tests.orchestrator.test_cli import _wait_for_deployment, env_of

CRASH_SHOWN_WITHIN_SECONDS = 30
# FLOWFORGE_EXECUTION_HEARTBEAT_TIMEOUT_SECONDS of the API and the CLI here (60 s by
# default): a flow silent for 5 s is taken for dead (the runner here beats every second).
HEARTBEAT_TIMEOUT_SECONDS = 5
SILENT_CRASH = (
    f"the orchestrator stopped reporting (no heartbeat for {HEARTBEAT_TIMEOUT_SECONDS}s): "
    "its process was killed or lost; run the job again"
)


def process_env(stack: FaultStack, prefect_api: str, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `flowforge` process of the product against the stack."""
    return {
        **os.environ,
        **env_of(stack.settings),
        "PREFECT_API_URL": prefect_api,
        "PREFECT_HOME": str(home),
        **extra,
    }


class Runner:
    def __init__(self, stack: FaultStack, prefect_api: str, home: Path) -> None:
        self.env = process_env(stack, prefect_api, home, FLOWFORGE_EXECUTION_HEARTBEAT_SECONDS="1")
        self.log_path = home / "runner.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "serve", "deployment"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, flow runs included
            )
        _wait_for_deployment(self.process, self.log_path)

    def flow_processes(self) -> list[psutil.Process]:
        """The processes running flow runs: the children of the runner's fork server."""
        assert self.process is not None
        children = psutil.Process(self.process.pid).children()
        servers = [c for c in children if "multiprocessing.forkserver" in " ".join(c.cmdline())]
        return [run for server in servers for run in server.children()]

    def kill_group(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill_group()


@pytest.fixture
def runner(fault_stack: FaultStack, prefect_api: str, tmp_path: Path) -> Iterator[Runner]:
    served = Runner(fault_stack, prefect_api, tmp_path)
    served.start()
    yield served
    served.stop()


class ApiProcess:
    """`flowforge serve api` as its own process (as the compose `api` service runs it),
    reconciling every second and taking a flow silent for 5 s for dead."""

    def __init__(self, stack: FaultStack, prefect_api: str, home: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = process_env(
            stack,
            prefect_api,
            home,
            FLOWFORGE_API_RECONCILE_SECONDS="1",
            FLOWFORGE_EXECUTION_HEARTBEAT_TIMEOUT_SECONDS=str(HEARTBEAT_TIMEOUT_SECONDS),
        )
        self.log_path = home / "api.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli", "serve", "api", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the API did not answer:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def cli_reconcile(stack: FaultStack, prefect_api: str, home: Path) -> str:
    """`flowforge executions reconcile` once, as an operator (or a cron job) runs it."""
    env = process_env(
        stack,
        prefect_api,
        home,
        FLOWFORGE_EXECUTION_HEARTBEAT_TIMEOUT_SECONDS=str(HEARTBEAT_TIMEOUT_SECONDS),
    )
    done = subprocess.run(
        [sys.executable, "-m", "cli", "executions", "reconcile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def wait_for_status(
    stack: FaultStack, execution_id: str, wanted: set[str], timeout: float
) -> ExecutionRecord:
    """Reads the executions store (as `flowforge executions show` does) until the execution
    is in `wanted` or `timeout` passed. It changes nothing: no reconcile from here."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            execution = stack.store.get_execution(execution_id)
        except OperationalError:  # another test session restarting PostgreSQL: look again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
            continue
        if execution.status in wanted or time.monotonic() > deadline:
            return execution
        time.sleep(0.5)


def start_slow_run(stack: FaultStack, workflow: Workflow) -> str:
    assert stack.proxy is not None
    stack.proxy.set("delay", delay_seconds=0.3)  # bronze lasts long enough to be killed in
    execution = trigger_execution(stack.settings, workflow.id, "products", store=stack.store)
    wait_for_status(stack, execution.id, {"RUNNING"}, timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        steps = stack.store.get_execution(execution.id).steps
        if any(s.layer == "bronze" and s.status == "RUNNING" for s in steps):
            return execution.id
        time.sleep(0.1)
    raise AssertionError("bronze never started")


def crash_shown(
    stack: FaultStack,
    execution_id: str,
    watcher: str,
    killed_at: float,
    prefect_api: str,
    home: Path,
    timeout: float = CRASH_SHOWN_WITHIN_SECONDS,
) -> tuple[ExecutionRecord, str]:
    """Waits for the execution to end as the user finds it, with nothing in this test
    reconciling: `hook` and `api` only read the store (the API gets no request before it
    ended, so only its background poll can have done it); `cli` runs `flowforge executions
    reconcile` again and again. Returns the execution and what the CLI printed."""
    printed = ""
    if watcher == "cli":
        deadline = killed_at + timeout
        home.mkdir(exist_ok=True)
        while execution_id not in printed and time.monotonic() < deadline:
            printed = cli_reconcile(stack, prefect_api, home)
        return stack.store.get_execution(execution_id), printed
    return wait_for_status(stack, execution_id, {"CRASHED", "FAILED"}, timeout), printed


def shown_by_api(api: ApiProcess, execution_id: str) -> dict[str, object]:
    response = httpx.get(f"{api.url}/api/executions/{execution_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def run_again_to_completion(stack: FaultStack, workflow: Workflow) -> None:
    again = trigger_execution(stack.settings, workflow.id, "products", store=stack.store)
    done = wait_for_status(stack, again.id, {"COMPLETED", "FAILED", "CRASHED"}, 90)
    assert done.status == "COMPLETED", done.error
    one_output_per_layer(stack.object_store, done)


@pytest.fixture
def api_if(request: pytest.FixtureRequest, fault_stack: FaultStack, prefect_api: str,
           tmp_path: Path) -> Iterator[ApiProcess | None]:  # fmt: skip
    """`flowforge serve api` running for the test's `watcher` "api", else None."""
    if request.node.callspec.params.get("watcher") != "api":
        yield None
        return
    home = tmp_path / "api-home"
    home.mkdir()
    api = ApiProcess(fault_stack, prefect_api, home)
    api.start()
    yield api
    api.stop()


@pytest.mark.parametrize("watcher", ["hook", "api"])
def test_flow_run_process_killed(
    fault_stack: FaultStack,
    sample_workflow: Workflow,
    runner: Runner,
    api_if: ApiProcess | None,
    prefect_api: str,
    tmp_path: Path,
    watcher: str,
) -> None:
    """The runner sees its child die and reports the flow run CRASHED to Prefect. `hook`:
    the flow's on_crashed hook, run by the runner, ends the execution (nothing else runs);
    `api`: the API's periodic reconcile follows Prefect's CRASHED."""
    workflow = fault_stack.add_workflow(sample_workflow)
    execution_id = start_slow_run(fault_stack, workflow)
    (flow_process,) = runner.flow_processes()
    flow_process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    crashed, _ = crash_shown(
        fault_stack, execution_id, watcher, killed_at, prefect_api, tmp_path, 10
    )
    print(f"{watcher}: crashed after {time.monotonic() - killed_at:.1f}s: {crashed.error}")
    assert crashed.status == "CRASHED", (crashed.status, crashed.error)
    assert "Process exited due to a SIGKILL signal" in (crashed.error or "")
    # Bronze was running when its process died; none is left RUNNING.
    assert [s.status for s in crashed.steps] == ["FAILED", "SKIPPED", "SKIPPED"]
    if api_if is not None:
        shown = shown_by_api(api_if, execution_id)
        assert (shown["status"], shown["error"]) == ("CRASHED", crashed.error)
    assert fault_stack.proxy is not None
    fault_stack.proxy.set("pass")
    run_again_to_completion(fault_stack, workflow)


@pytest.mark.parametrize("watcher", ["api", "cli"])
def test_whole_orchestrator_killed(
    fault_stack: FaultStack,
    sample_workflow: Workflow,
    runner: Runner,
    api_if: ApiProcess | None,
    prefect_api: str,
    tmp_path: Path,
    watcher: str,
) -> None:
    """Prefect would show the run RUNNING for ever; the flow's heartbeat stops and the
    product ends it on its own: `api`, the API's periodic reconcile
    (FLOWFORGE_API_RECONCILE_SECONDS=1); `cli`, `flowforge executions reconcile`."""
    workflow = fault_stack.add_workflow(sample_workflow)
    execution_id = start_slow_run(fault_stack, workflow)
    runner.kill_group()  # the runner and its flow run: a lost node
    killed_at = time.monotonic()
    crashed, printed = crash_shown(
        fault_stack, execution_id, watcher, killed_at, prefect_api, tmp_path / "cli"
    )
    took = time.monotonic() - killed_at
    print(f"{watcher}: after {took:.1f}s: {crashed.status} {crashed.error}")
    assert (crashed.status, crashed.error) == ("CRASHED", SILENT_CRASH)
    # Not before the flow had been silent for the timeout (its last beat <= 1 s before).
    assert took > HEARTBEAT_TIMEOUT_SECONDS - 1.5
    assert fault_stack.store.active_execution(workflow.id, "products") is None  # job free
    if api_if is not None:
        shown = shown_by_api(api_if, execution_id)
        assert (shown["status"], shown["error"]) == ("CRASHED", SILENT_CRASH)
    else:
        assert f"{execution_id}\tCRASHED\t{SILENT_CRASH}" in printed.splitlines()
    assert crashed.flow_run_id is not None
    with get_client(sync_client=True) as client:  # Prefect's UI no longer says RUNNING
        flow_run = client.read_flow_run(UUID(crashed.flow_run_id))
    assert flow_run.state is not None and flow_run.state.type.value == "CRASHED"
    assert flow_run.state.message == SILENT_CRASH
    assert fault_stack.proxy is not None
    fault_stack.proxy.set("pass")
    runner.start()  # the supervisor brings the orchestrator back
    run_again_to_completion(fault_stack, workflow)
