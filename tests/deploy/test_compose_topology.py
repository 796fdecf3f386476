"""The compose topology, started as local processes (tests/deploy/topology.py), runs the
sample workflow with the counts the flow gives in-process; with recognisable canary secrets
and debug logging on, no secret shows up in any process's log, the Prefect logs, artifacts,
parameters and state messages, the executions store or the API — a failing job (a gold
model with a bad column) and a call with a wrong token included, so error paths count."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flowforge import errors
from flowforge.identities import COMPONENTS
from flowforge.settings import Settings
from flowforge.v1 import bronze_pb2, common_pb2
from orchestrator.clients import BronzeClient
from orchestrator.store import Store
from orchestrator.store.database import open_engine
from tests.deploy.compose import ROOT
from tests.deploy.topology import BIN, Topology
from tests.sample_oracle import EXPECTED

# About a minute alone; the generous limit is for a machine shared with other test runs.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

WORKFLOW = "customer-data"
# A job that fails: bronze and silver run over the sample products, its gold model does not.
FAILING = ("canary-failure", "broken-gold")
FAILING_WORKFLOW = f"""\
id: {FAILING[0]}
name: A job whose gold model fails
jobs:
  - id: {FAILING[1]}
    csv: {{delimiter: ",", header: true}}
    silver:
      columns: [{{source: product_id, required: true}}, {{source: name}}]
    gold:
      models: [{{name: broken, sql: "SELECT no_such_column FROM silver"}}]
"""


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
    } | {
        f"FLOWFORGE_S3_{component.upper()}_{key}": f"{value}-{component}"
        for component in COMPONENTS
        for key, value in (
            ("ACCESS_KEY_ID", f"canaryak{tag}"),
            ("SECRET_ACCESS_KEY", f"CANARY-s3-secret-{tag}"),
        )
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
        failing = stack.folder / "canary-failure.yaml"
        failing.write_text(FAILING_WORKFLOW)
        stack.run("apply", [str(BIN / "flowforge"), "workflows", "apply", str(failing)],
                  stack.env("seed"))  # fmt: skip
        stack.start(["worker", "api"])
        yield stack
    finally:
        stack.stop()
        stack.drop_databases()


@pytest.fixture(scope="module")
def runs(topology: Topology) -> dict[tuple[str, str], Any]:
    """Each sample job and the failing one, run at once through the served deployment as
    `flowforge run` does; their executions by (workflow, job)."""
    env = topology.env("worker")
    jobs = {(WORKFLOW, job): [] for job in EXPECTED}
    jobs[FAILING] = [str(ROOT / "examples" / "data" / "products.csv")]  # uploaded by the run
    started = {
        (workflow, job): subprocess.Popen(
            [BIN / "flowforge", "run", "--workflow", workflow, "--job", job, *files],
            env=env,
            cwd=topology.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for (workflow, job), files in jobs.items()
    }
    outputs = {key: run.communicate(timeout=600)[0].decode() for key, run in started.items()}
    for (workflow, job), run in started.items():
        output = outputs[workflow, job]
        (topology.folder / "logs" / f"run-{workflow}-{job}.log").write_text(output)
        assert run.returncode == (1 if (workflow, job) == FAILING else 0), output
    store = Store(open_engine(env["FLOWFORGE_DATABASE_URL"]))
    try:
        return {
            (workflow, e.job_id): e
            for workflow in (WORKFLOW, FAILING[0])
            for e in store.list_executions(workflow, None, None, 20)
        }
    finally:
        store.close()


@pytest.fixture(scope="module")
def executions(runs: dict[tuple[str, str], Any]) -> dict[str, Any]:
    return {job: e for (workflow, job), e in runs.items() if workflow == WORKFLOW}


@pytest.fixture(scope="module")
def failed(runs: dict[tuple[str, str], Any]) -> Any:
    return runs[FAILING]


@pytest.fixture(scope="module")
def wrong_token(topology: Topology) -> str:
    """A layer call with a wrong token (itself a canary): the service refuses it, and
    neither side may log the token it was given."""
    token = f"CANARY-wrong-grpc-token-{secrets.token_hex(6)}"
    env = topology.env("worker")
    settings = Settings(_env_file=None, grpc_token=token)  # type: ignore[call-arg]
    request = bronze_pb2.IngestRequest(job=common_pb2.JobRef(workflow_id="none", job_id="none"))
    client = BronzeClient(settings, env["FLOWFORGE_BRONZE_ADDRESS"])
    with client, pytest.raises(errors.Unauthenticated) as refused:
        client.ingest(request)
    assert token not in str(refused.value)
    return token


def test_sample_workflow_runs_through_the_compose_topology(executions: dict[str, Any]) -> None:
    assert set(executions) == set(EXPECTED)
    for job, execution in executions.items():
        assert execution.status == "COMPLETED", (job, execution.error)
        counts = {s.layer: (s.rows_in, s.rows_out, s.rows_rejected) for s in execution.steps}
        assert counts == EXPECTED[job], job
        assert execution.balance["balanced"]


def test_a_failing_job_fails_with_the_services_message(failed: Any) -> None:
    assert failed.status == "FAILED"
    steps = {s.layer: s.status for s in failed.steps}
    assert steps == {"bronze": "COMPLETED", "silver": "COMPLETED", "gold": "FAILED"}
    assert "no_such_column" in failed.error, failed.error


def test_calls_spread_over_the_replicas_behind_one_name(
    topology: Topology, executions: dict[str, Any]
) -> None:
    """One address naming both bronze replicas (what DNS returns for a scaled service):
    the flow's calls all landed on them, and one channel alternates between them."""

    def ingests() -> list[int]:
        logs = topology.logs()
        return [logs[name].count('"rpc": "Ingest"') for name in ("bronze", "bronze#1")]

    assert sum(ingests()) == len(EXPECTED) + 1  # the failing job's too
    before = ingests()
    env = topology.env("worker")
    settings = Settings(_env_file=None, grpc_token=env["FLOWFORGE_GRPC_TOKEN"])  # type: ignore[call-arg]
    request = bronze_pb2.IngestRequest(job=common_pb2.JobRef(workflow_id="none", job_id="none"))
    spread = [0, 0]
    calls = 0
    with BronzeClient(settings, env["FLOWFORGE_BRONZE_ADDRESS"]) as client:
        # round_robin starts on the first subchannel that is ready and takes the other in
        # as soon as it connects: within a few calls both replicas answer in turn.
        while min(spread) < 2:
            assert calls < 30, f"the calls did not spread over both replicas: {spread}"
            with pytest.raises(errors.NotFound):
                client.ingest(request)
            calls += 1
            # A service writes its request line before it answers: the count is current.
            spread = [after - was for after, was in zip(ingests(), before, strict=True)]
    assert sum(spread) == calls, spread


def test_every_healthcheck_passes(topology: Topology) -> None:
    checked = []
    for name, service in topology.services.items():
        if "healthcheck" not in service:
            continue
        command = topology.healthcheck(name)
        if command[0] == "wget" and shutil.which("wget") is None:
            # wget is in the SeaweedFS image, not on every machine: `wget -q -O /dev/null URL`
            # succeeds on a 2xx/3xx answer, so the same GET stands in for it.
            answer = httpx.get(command[-1], timeout=30, follow_redirects=True)
            assert answer.status_code < 400, (name, answer.status_code, answer.text)
        else:
            probe = subprocess.run(command, env=topology.env(name), capture_output=True, timeout=30)
            assert probe.returncode == 0, (name, probe.stdout, probe.stderr)
        checked.append(name)
    assert set(checked) == {n for n, s in topology.services.items() if "healthcheck" in s}


def prefect_records(topology: Topology) -> dict[str, Any]:
    """Everything the Prefect server keeps about the runs: logs, artifacts, flow runs
    (parameters, state messages), task runs, deployments, variables, events; every page."""
    env = topology.env("worker")
    user, password = topology.dotenv["PREFECT_AUTH_STRING"].split(":", 1)
    found: dict[str, Any] = {}
    with httpx.Client(base_url=env["PREFECT_API_URL"], auth=(user, password), timeout=30) as api:
        for kind in ("logs", "artifacts", "flow_runs", "task_runs", "deployments", "variables"):
            found[kind] = []
            while True:  # debug logging: more than one page of logs
                reply = api.post(
                    f"/{kind}/filter", json={"limit": PAGE, "offset": len(found[kind])}
                )
                reply.raise_for_status()
                found[kind] += reply.json()
                if len(reply.json()) < PAGE:
                    break
        reply = api.post("/events/filter", json={"limit": 200})
        found["events"] = reply.json() if reply.status_code == 200 else []
    return found


PAGE = 200  # the most one Prefect filter request returns
# The S3 access key id is left out on purpose: it stays a plain str in Settings (not a
# SecretStr), because it is an identifier, not a secret: it travels in clear in every
# signed request's Authorization header, and AWS and SeaweedFS print it in their errors
# (InvalidAccessKeyId, SignatureDoesNotMatch). The secret key is what must never show.
NOT_SECRET = {"FLOWFORGE_S3_ACCESS_KEY_ID"} | {
    f"FLOWFORGE_S3_{component.upper()}_ACCESS_KEY_ID" for component in COMPONENTS
}


def canary_secrets(topology: Topology) -> dict[str, str]:
    return {
        k: v for k, v in topology.dotenv.items() if "CANARY" in v.upper() and k not in NOT_SECRET
    }


def test_canary_secrets_appear_nowhere(
    topology: Topology, executions: dict[str, Any], failed: Any, wrong_token: str
) -> None:
    secrets_ = canary_secrets(topology) | {"the wrong gRPC token": wrong_token}
    secrets_["PREFECT_AUTH_STRING (base64)"] = base64.b64encode(
        topology.dotenv["PREFECT_AUTH_STRING"].encode()
    ).decode()
    logs = topology.logs()
    assert any("DEBUG" in text or '"level": "debug"' in text for text in logs.values())
    prefect = prefect_records(topology)
    assert prefect["logs"] and prefect["flow_runs"]  # there is something to look at
    # The failing run is there too: its state message and its error.
    failed_run = next(r for r in prefect["flow_runs"] if r["id"] == str(failed.flow_run_id))
    assert failed_run["state"]["type"] == "FAILED" and failed_run["state"]["message"]
    assert any(log["flow_run_id"] == failed_run["id"] for log in prefect["logs"])
    places = {f"log of {name}": text for name, text in logs.items()}
    places |= {f"Prefect {kind}": json.dumps(value) for kind, value in prefect.items()}
    records = [e.to_dict() for e in [*executions.values(), failed]]
    places["executions store"] = json.dumps(records, default=str)
    for name, value in secrets_.items():
        leaks = [place for place, text in places.items() if value in text]
        assert not leaks, f"{name} appears in {leaks}"


def api_responses(topology: Topology, runs: list[dict[str, str]]) -> dict[str, str]:
    """Every GET route of the API (from its OpenAPI document) with the ids of each run,
    as the API token's holder sees them; event streams left out (they never end)."""
    port = topology.ports["api", 8000][0]
    token = topology.dotenv["FLOWFORGE_API_TOKEN"]
    found: dict[str, str] = {}
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as api:  # fmt: skip
        spec = api.get("/openapi.json")
        spec.raise_for_status()
        found["/openapi.json"] = spec.text
        for path, methods in spec.json()["paths"].items():
            if "get" not in methods or "events" in path or "stream" in path:
                continue
            for ids in runs:
                try:
                    url = path.format(**ids)
                except KeyError:
                    continue
                reply = api.get(url)
                found[url] = f"{reply.status_code} {reply.text}"
                assert reply.status_code < 500, (url, reply.text)
        unauthenticated = httpx.get(f"http://127.0.0.1:{port}/api/executions", timeout=30)
        assert unauthenticated.status_code == 401
        found["401"] = unauthenticated.text
    return found


def test_canary_secrets_never_reach_the_api(
    topology: Topology, executions: dict[str, Any], failed: Any
) -> None:
    runs = [
        {"execution_id": executions["customers"].id, "workflow_id": WORKFLOW,
         "job_id": "customers", "name": "countries", "layer": "silver"},
        {"execution_id": failed.id, "workflow_id": FAILING[0], "job_id": FAILING[1],
         "name": "countries", "layer": "gold"},
    ]  # fmt: skip
    responses = api_responses(topology, runs)
    for execution in (executions["customers"], failed):
        assert any(execution.id in text for text in responses.values())
    for name, value in canary_secrets(topology).items():
        leaks = [url for url, text in responses.items() if value in text]
        assert not leaks, f"{name} appears in the API responses of {leaks}"
