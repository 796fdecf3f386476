"""The compose topology, started as local processes (tests/deploy/topology.py), runs the
sample workflow with the counts the flow gives in-process; with recognisable canary secrets
and debug logging on, no secret shows up in any process's log, the Prefect logs, artifacts
and parameters, the executions store or the API."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from flowforge import errors
from orchestrator.store import Store
from orchestrator.store.database import open_engine
from tests.deploy.topology import BIN, Topology
from tests.orchestrator.test_end_to_end import EXPECTED

pytestmark = pytest.mark.slow

WORKFLOW = "customer-data"


def canaries() -> dict[str, str]:
    tag = secrets.token_hex(6)
    return {
        "FLOWFORGE_S3_ACCESS_KEY_ID": f"canaryak{tag}",
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": f"CANARY-s3-secret-{tag}",
        "POSTGRES_PASSWORD": f"CANARY-db-password-{tag}",
        "FLOWFORGE_GRPC_TOKEN": f"CANARY-grpc-token-{tag}",
        "FLOWFORGE_API_TOKEN": f"CANARY-api-token-{tag}",
        "PREFECT_AUTH_STRING": f"admin:CANARY-prefect-{tag}",
        "SEAWEEDFS_ADMIN_PASSWORD": f"CANARY-console-{tag}",
    }


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    dotenv = canaries() | {
        "FLOWFORGE_S3_BUCKET": "flowforge-topology",
        "FLOWFORGE_LOG_LEVEL": "DEBUG",
    }
    stack = Topology(
        dotenv,
        tmp_path_factory.mktemp("topology"),
        replicas={"bronze": 2},
        extra_env={"PREFECT_LOGGING_LEVEL": "DEBUG"},
    )
    stack.prepare_ports()
    stack.create_databases()
    try:
        stack.start_object_store()
        stack.start(["prefect-server", "bronze", "silver", "gold"])
        stack.run("seed", stack.command("seed"), stack.env("seed"))
        stack.start(["worker", *(["api"] if api_in_cli() else [])])
        yield stack
    finally:
        stack.stop()
        stack.drop_databases()


def api_in_cli() -> bool:
    from flowforge.cli import serve_app

    return any(c.name == "api" for c in serve_app.registered_commands)


@pytest.fixture(scope="module")
def executions(topology: Topology) -> dict[str, Any]:
    """Each sample job run through the served deployment, as `flowforge run` does."""
    env = topology.env("worker")
    runs = {
        job: subprocess.Popen(
            [BIN / "flowforge", "run", "--workflow", WORKFLOW, "--job", job],
            env=env,
            cwd=topology.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for job in EXPECTED
    }
    outputs = {job: run.communicate(timeout=240)[0].decode() for job, run in runs.items()}
    for job, run in runs.items():
        (topology.folder / "logs" / f"run-{job}.log").write_text(outputs[job])
        assert run.returncode == 0, outputs[job]
    store = Store(open_engine(env["FLOWFORGE_DATABASE_URL"]))
    try:
        return {e.job_id: e for e in store.list_executions(WORKFLOW, None, None, 20)}
    finally:
        store.close()


def test_sample_workflow_runs_through_the_compose_topology(executions: dict[str, Any]) -> None:
    assert set(executions) == set(EXPECTED)
    for job, execution in executions.items():
        assert execution.status == "COMPLETED", (job, execution.error)
        counts = {s.layer: (s.rows_in, s.rows_out, s.rows_rejected) for s in execution.steps}
        assert counts == EXPECTED[job], job
        assert execution.balance["balanced"]


def test_calls_spread_over_the_replicas_behind_one_name(
    topology: Topology, executions: dict[str, Any]
) -> None:
    """One address naming both bronze replicas (what DNS returns for a scaled service):
    the flow's calls all landed on them, and one channel alternates between them."""
    from flowforge.settings import Settings
    from flowforge.v1 import bronze_pb2, common_pb2
    from orchestrator.clients import BronzeClient

    def ingests() -> list[int]:
        logs = topology.logs()
        return [logs[name].count('"rpc": "Ingest"') for name in ("bronze", "bronze#1")]

    assert sum(ingests()) == len(EXPECTED)
    before = ingests()
    env = topology.env("worker")
    settings = Settings(_env_file=None, grpc_token=env["FLOWFORGE_GRPC_TOKEN"])  # type: ignore[call-arg]
    request = bronze_pb2.IngestRequest(job=common_pb2.JobRef(workflow_id="none", job_id="none"))
    with BronzeClient(settings, env["FLOWFORGE_BRONZE_ADDRESS"]) as client:
        grpc.channel_ready_future(client._channel).result(timeout=10)
        time.sleep(0.3)  # both subchannels connected, not only the first
        for _ in range(6):
            with pytest.raises(errors.NotFound):
                client.ingest(request)
    time.sleep(0.5)  # log lines flushed
    spread = [after - was for after, was in zip(ingests(), before, strict=True)]
    assert sum(spread) == 6 and min(spread) >= 2, spread


def test_every_healthcheck_passes(topology: Topology) -> None:
    for name, service in topology.services.items():
        if "healthcheck" not in service or (name == "api" and not api_in_cli()):
            continue
        if shutil.which(service["healthcheck"]["test"][1]) is None:
            continue  # wget is in the SeaweedFS image; the start already waited on /healthz
        probe = subprocess.run(
            topology.healthcheck(name), env=topology.env(name), capture_output=True, timeout=30
        )
        assert probe.returncode == 0, (name, probe.stdout, probe.stderr)


def prefect_records(topology: Topology) -> dict[str, Any]:
    """Everything the Prefect server keeps about the runs: logs, artifacts, flow runs
    (parameters), deployments, variables, events."""
    env = topology.env("worker")
    user, password = topology.dotenv["PREFECT_AUTH_STRING"].split(":", 1)
    found: dict[str, Any] = {}
    with httpx.Client(base_url=env["PREFECT_API_URL"], auth=(user, password), timeout=30) as api:
        for kind in ("logs", "artifacts", "flow_runs", "task_runs", "deployments", "variables"):
            reply = api.post(f"/{kind}/filter", json={"limit": 200})
            reply.raise_for_status()
            found[kind] = reply.json()
        reply = api.post("/events/filter", json={"limit": 200})
        found["events"] = reply.json() if reply.status_code == 200 else []
    return found


def test_canary_secrets_appear_nowhere(topology: Topology, executions: dict[str, Any]) -> None:
    secrets_ = {k: v for k, v in topology.dotenv.items() if "CANARY" in v.upper()}
    secrets_["PREFECT_AUTH_STRING (base64)"] = base64.b64encode(
        topology.dotenv["PREFECT_AUTH_STRING"].encode()
    ).decode()
    logs = topology.logs()
    assert any("DEBUG" in text or '"level": "debug"' in text for text in logs.values())
    prefect = prefect_records(topology)
    assert prefect["logs"] and prefect["flow_runs"]  # there is something to look at
    places = {f"log of {name}": text for name, text in logs.items()}
    places |= {f"Prefect {kind}": json.dumps(value) for kind, value in prefect.items()}
    places["executions store"] = json.dumps([e.to_dict() for e in executions.values()], default=str)
    for name, value in secrets_.items():
        if name == "FLOWFORGE_S3_ACCESS_KEY_ID":
            continue  # an access key id is an identifier (it is in every signed request)
        leaks = [place for place, text in places.items() if value in text]
        assert not leaks, f"{name} appears in {leaks}"
