"""The orchestrator killed mid-run (SIGKILL): the execution is shown as crashed within a
bounded time, not "running" for ever, and running the job again completes.

The orchestrator here is `flowforge serve deployment` (a Prefect runner that runs each
flow run in a process forked from its fork server), as `flowforge up` and the compose
worker run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy.exc import OperationalError

from orchestrator.reconcile import reconcile
from orchestrator.store import ExecutionRecord
from orchestrator.trigger import trigger_execution
from orchestrator.workflows import Workflow
from tests.faults.conftest import FaultStack, one_output_per_layer
from tests.orchestrator.test_cli import _wait_for_deployment, env_of

CRASH_SHOWN_WITHIN_SECONDS = 30


class Runner:
    def __init__(self, stack: FaultStack, prefect_api: str, home: Path) -> None:
        self.env = {
            **os.environ,
            **env_of(stack.settings),
            "PREFECT_API_URL": prefect_api,
            "PREFECT_HOME": str(home),
            "FLOWFORGE_EXECUTION_HEARTBEAT_SECONDS": "1",
        }
        self.log_path = home / "runner.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flowforge.cli", "serve", "deployment"],
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


def wait_for_status(
    stack: FaultStack, execution_id: str, wanted: set[str], timeout: float
) -> ExecutionRecord:
    deadline = time.monotonic() + timeout
    # A flow silent for 5 s is taken for dead (the runner here beats every second).
    settings = stack.settings.model_copy(update={"execution_heartbeat_timeout_seconds": 5.0})
    while True:
        try:
            reconcile(settings, store=stack.store)  # what the API does periodically
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


def test_flow_run_process_killed(
    fault_stack: FaultStack, sample_workflow: Workflow, runner: Runner
) -> None:
    workflow = fault_stack.add_workflow(sample_workflow)
    execution_id = start_slow_run(fault_stack, workflow)
    (flow_process,) = runner.flow_processes()
    flow_process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    crashed = wait_for_status(
        fault_stack, execution_id, {"CRASHED", "FAILED"}, CRASH_SHOWN_WITHIN_SECONDS
    )
    assert crashed.status == "CRASHED", (crashed.status, crashed.error)
    print(f"shown as crashed after {time.monotonic() - killed_at:.1f}s: {crashed.error}")
    assert fault_stack.proxy is not None
    fault_stack.proxy.set("pass")
    again = trigger_execution(
        fault_stack.settings, workflow.id, "products", store=fault_stack.store
    )
    done = wait_for_status(fault_stack, again.id, {"COMPLETED", "FAILED", "CRASHED"}, 90)
    assert done.status == "COMPLETED", done.error
    one_output_per_layer(fault_stack.object_store, done)


def test_whole_orchestrator_killed(
    fault_stack: FaultStack, sample_workflow: Workflow, runner: Runner
) -> None:
    workflow = fault_stack.add_workflow(sample_workflow)
    execution_id = start_slow_run(fault_stack, workflow)
    runner.kill_group()  # the runner and its flow run: a lost node
    killed_at = time.monotonic()
    crashed = wait_for_status(
        fault_stack, execution_id, {"CRASHED", "FAILED"}, CRASH_SHOWN_WITHIN_SECONDS
    )
    print(f"after {time.monotonic() - killed_at:.1f}s: {crashed.status} {crashed.error}")
    assert crashed.status == "CRASHED", (crashed.status, crashed.error)
    assert fault_stack.proxy is not None
    fault_stack.proxy.set("pass")
    runner.start()  # the supervisor brings the orchestrator back
    again = trigger_execution(
        fault_stack.settings, workflow.id, "products", store=fault_stack.store
    )
    done = wait_for_status(fault_stack, again.id, {"COMPLETED", "FAILED", "CRASHED"}, 90)
    assert done.status == "COMPLETED", done.error
    one_output_per_layer(fault_stack.object_store, done)
