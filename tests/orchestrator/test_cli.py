"""The orchestrator's commands, through typer's runner and a served deployment subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest
from typer.testing import CliRunner

from cli.main import app
from flowforge import catalog, tables
from flowforge.embedded import pick_ports
from flowforge.layout import LAYERS, JobKey
from flowforge.settings import Settings, get_settings
from flowforge.tables import TableRef
from orchestrator.deployment import FULL_NAME, MAINTENANCE_NAME, WORKFLOW_NAME, maintenance_cron
from orchestrator.maintenance import MAINTENANCE_KEY
from orchestrator.store import ExecutionRecord
from orchestrator.trigger import trigger_execution
from orchestrator.workflows import Workflow
from tests.delta import commit, table
from tests.orchestrator.conftest import SAMPLE_WORKFLOW, Stack
from tests.sample_oracle import EXPECTED, quarantine_reasons


def env_of(settings: Settings) -> dict[str, str]:
    secret = settings.s3_secret_access_key
    database = settings.database_url
    return {
        "FLOWFORGE_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "FLOWFORGE_S3_ACCESS_KEY_ID": settings.s3_access_key_id or "",
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": secret.get_secret_value() if secret else "",
        "FLOWFORGE_S3_BUCKET": settings.s3_bucket,
        "FLOWFORGE_STATE_DIR": str(settings.state_dir),
        "FLOWFORGE_DATABASE_URL": database.get_secret_value() if database else "",
        "FLOWFORGE_BRONZE_ADDRESS": settings.bronze_address,
        "FLOWFORGE_SILVER_ADDRESS": settings.silver_address,
        "FLOWFORGE_GOLD_ADDRESS": settings.gold_address,
        "FLOWFORGE_LAYER_RETRY_DELAYS_SECONDS": "[3, 3]",
        "FLOWFORGE_LOG_FORMAT": "text",
        "COLUMNS": "200",  # rich tables stay on one line per row
    }


@pytest.fixture
def cli(stack: Stack) -> Iterator[tuple[CliRunner, dict[str, str]]]:
    get_settings.cache_clear()
    yield CliRunner(), env_of(stack.settings)
    get_settings.cache_clear()


HEALTH_PORT = pick_ports()["s3.port"]  # any free port


@pytest.fixture(scope="module")
def served_deployment(
    stack: Stack, prefect_api: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[bytes]]:
    """`flowforge serve deployment` as the compose worker runs it, against the test stack."""
    home = tmp_path_factory.mktemp("runner")
    log = (home / "runner.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "deployment", "--port", str(HEALTH_PORT)],
        env={
            **os.environ,
            **env_of(stack.settings),
            "PREFECT_API_URL": prefect_api,
            "PREFECT_HOME": str(home),
        },  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_deployment(process, home / "runner.log")
        yield process
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _wait_for_deployment(process: subprocess.Popen[bytes], log: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + 90
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:  # the served process registers the three deployments one after another
                for name in (FULL_NAME, WORKFLOW_NAME, MAINTENANCE_NAME):
                    client.read_deployment_by_name(name)
                return
            except ObjectNotFound:
                time.sleep(0.5)
    raise AssertionError(f"the deployment was not served in time:\n{log.read_text()}")


def test_workflows_apply_and_list(cli: tuple[CliRunner, dict[str, str]], tmp_path: Path) -> None:
    runner, env = cli
    applied = runner.invoke(app, ["workflows", "apply", str(SAMPLE_WORKFLOW)], env=env)
    assert applied.exit_code == 0, applied.output
    assert "workflow customer-data: 3 jobs (customers, orders, products)" in applied.output
    listed = runner.invoke(app, ["workflows", "list"], env=env)
    # Not a terminal: tab-separated, a header line first, nothing cut or wrapped.
    header, *lines = listed.output.splitlines()
    assert header == "workflow\tname\tjobs\tupdated"
    assert any(line.startswith("customer-data\tCustomer data\tcustomers, orders, products\t")
               for line in lines)  # fmt: skip
    as_json = json.loads(runner.invoke(app, ["workflows", "list", "--json"], env=env).output)
    sample = next(w for w in as_json if w["id"] == "customer-data")
    assert sample["jobs"] == ["customers", "orders", "products"]

    bad = tmp_path / "bad.yaml"
    bad.write_text("id: wf\njobs:\n  - id: a\n    silver: {columns: [{source: x, type: nope}]}\n")
    refused = runner.invoke(app, ["workflows", "apply", str(bad)], env=env)
    assert refused.exit_code == 1
    assert f"error: {bad}:4: jobs[0].silver.columns[0].type 'nope' is not a type" in refused.output


def test_executions_list_and_show(
    cli: tuple[CliRunner, dict[str, str]], stack: Stack, sample_workflow: Workflow
) -> None:
    runner, env = cli
    workflow = stack.add_workflow(sample_workflow)
    execution_id = stack.flow(workflow_id=workflow.id, job_id="products")["execution_id"]
    listed = runner.invoke(app, ["executions", "list", "--workflow", workflow.id], env=env)
    assert listed.exit_code == 0, listed.output
    header, row = listed.output.splitlines()
    assert header.split("\t") == [
        "execution", "job", "status", "layers", "created", "seconds", "error"
    ]  # fmt: skip
    assert row.split("\t")[:4] == [
        execution_id, f"{workflow.id}/products", "COMPLETED", "bronze,silver,gold"
    ]  # fmt: skip
    as_json = runner.invoke(app, ["executions", "list", "-w", workflow.id, "--json"], env=env)
    (record,) = json.loads(as_json.output)
    assert (record["id"], record["status"]) == (execution_id, "COMPLETED")
    assert [s["layer"] for s in record["steps"]] == ["bronze", "silver", "gold"]
    shown = runner.invoke(app, ["executions", "show", execution_id], env=env)
    assert shown.exit_code == 0, shown.output
    for reason, count in quarantine_reasons("products").items():
        assert f"silver quarantined ({reason}): {count}" in shown.output
    assert "products_by_category" in shown.output  # the gold preview
    as_json = runner.invoke(app, ["executions", "show", execution_id, "--json"], env=env)
    record = json.loads(as_json.output)
    assert record["status"] == "COMPLETED" and record["balance"]["balanced"]
    missing = runner.invoke(app, ["executions", "show", "nope"], env=env)
    assert missing.exit_code == 1 and "execution 'nope' does not exist" in missing.output


def test_served_deployment_answers_health_on_its_port(
    served_deployment: subprocess.Popen[bytes],
) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            response = httpx.get(f"http://127.0.0.1:{HEALTH_PORT}/health", timeout=5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "no /health on the runner's port"
            time.sleep(0.5)
    assert response.status_code == 200, response.text
    healthy = subprocess.run(
        [sys.executable, "-m", "cli", "health", "http",
         f"http://127.0.0.1:{HEALTH_PORT}/health"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    assert healthy.returncode == 0, healthy.stderr


def test_the_maintenance_deployment_is_served_beside_the_medallion(
    stack: Stack, served_deployment: subprocess.Popen[bytes]
) -> None:
    """flowforge-maintenance/tables is served by the same process, on its schedule; a run
    of it compacts the table it is given (its commit names the flow run)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    ref = TableRef.silver_quarantine(JobKey(f"mcli-{uuid.uuid4().hex[:8]}", "job"))
    for run_id in ("r0", "r1"):
        commit(stack.settings, ref, {"_rule": [run_id]}, run_id)  # two files
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(MAINTENANCE_NAME)
    assert [s.schedule.cron for s in deployment.schedules] == [  # type: ignore[union-attr]
        maintenance_cron(stack.settings)
    ]
    flow_run = run_deployment(MAINTENANCE_NAME, parameters={"tables": [ref.path]}, timeout=120)
    assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
    (latest,) = table(stack.settings, ref).history(1)
    assert latest["operation"] == "OPTIMIZE"
    assert latest[MAINTENANCE_KEY] == f"maintenance-{flow_run.id}"
    assert len(table(stack.settings, ref).file_uris()) == 1


def test_run_uploads_and_goes_through_the_served_deployment(
    cli: tuple[CliRunner, dict[str, str]],
    stack: Stack,
    sample_workflow: Workflow,
    served_deployment: subprocess.Popen[bytes],
    tmp_path: Path,
) -> None:
    runner, env = cli
    workflow = stack.add_workflow(sample_workflow)
    extra = tmp_path / "more-products.csv"
    extra.write_text("product_id,name,category,price,active\nP9001,Widget,toys,3.50,yes\n")
    ran = runner.invoke(
        app, ["run", "--workflow", workflow.id, "--job", "products", str(extra)], env=env
    )
    assert ran.exit_code == 0, ran.output
    execution = stack.store.list_executions(workflow_id=workflow.id)[0]
    assert execution.status == "COMPLETED"
    assert execution.flow_run_id  # a flow run of the deployment, run by the served process
    assert execution.step("bronze").rows_in == 41  # the sample's 40 rows and the uploaded one

    broken = sample_workflow.job("products").model_copy(
        update={"silver": {"columns": [{"source": "no_such_column"}]}}
    )
    failing = stack.add_workflow(sample_workflow, jobs=[broken])
    failed = runner.invoke(app, ["run", "-w", failing.id, "-j", "products"], env=env)
    assert failed.exit_code == 1
    assert "silver: spec.columns[0].source 'no_such_column' is not a bronze column" in (
        failed.output
    )


def test_run_from_a_later_layer_and_with_a_full_refresh(
    cli: tuple[CliRunner, dict[str, str]],
    stack: Stack,
    sample_workflow: Workflow,
    served_deployment: subprocess.Popen[bytes],
) -> None:
    """`--from-layer gold` runs gold alone over the committed silver; `--full-refresh`
    ingests every landing file again instead of skipping those already in bronze."""
    runner, env = cli
    workflow = stack.add_workflow(sample_workflow)
    job = JobKey(workflow.id, "products")

    def committed_run(layer: str) -> str:
        """The run of the latest commit of the layer's tables (gold: of every model's)."""
        refs = {
            "bronze": [TableRef.bronze(job)],
            "silver": [TableRef.silver(job)],
            "gold": catalog.gold_tables(stack.object_store, job.workflow_id, job.job_id),
        }[layer]
        runs = {tables.history(tables.require(stack.settings, r, layer), 1)[0].run_id for r in refs}
        assert len(runs) == 1, (layer, runs)
        return runs.pop()

    def run(*options: str) -> ExecutionRecord:
        ran = runner.invoke(app, ["run", "-w", workflow.id, "-j", "products", *options], env=env)
        assert ran.exit_code == 0, ran.output
        execution = stack.store.list_executions(workflow_id=workflow.id, limit=1)[0]
        assert execution.status == "COMPLETED", execution.error
        return execution

    first = run()
    assert {layer: committed_run(layer) for layer in LAYERS} == dict.fromkeys(LAYERS, first.id)

    gold_only = run("--from-layer", "gold")
    assert [(s.layer, s.status) for s in gold_only.steps] == [("gold", "COMPLETED")]
    products = EXPECTED["products"]
    assert gold_only.step("gold").rows_in == first.step("silver").rows_out == products["silver"][1]
    assert (committed_run("bronze"), committed_run("silver"), committed_run("gold")) == (
        first.id, first.id, gold_only.id
    )  # fmt: skip

    again = run()  # the landing file is in bronze already: skipped, nothing new
    assert again.step("bronze").rows_in == 0
    refreshed = run("--full-refresh")
    assert refreshed.full_refresh
    bronze = refreshed.step("bronze")
    assert (bronze.rows_in, bronze.rows_out) == products["bronze"][:2]
    assert refreshed.step("silver").rows_out == products["silver"][1]
    assert committed_run("bronze") == refreshed.id


def test_seed_lands_the_sample(cli: tuple[CliRunner, dict[str, str]], stack: Stack) -> None:
    runner, env = cli
    seeded = runner.invoke(app, ["seed"], env=env)
    assert seeded.exit_code == 0, seeded.output
    assert "seeded workflow customer-data: jobs customers, orders, products" in seeded.output
    for job in ("customers", "orders", "products"):
        keys = [o.key for o in stack.object_store.list(f"landing/customer-data/{job}/")]
        assert keys == [f"landing/customer-data/{job}/{job}.csv"]
    assert stack.object_store.head(f"dimensions/countries/_delta_log/{0:020d}.json") is not None
    assert stack.store.get_workflow("customer-data").dimensions == ["countries"]


@contextmanager
def waiting_in_bronze(stack: Stack, workflow: Workflow) -> Iterator[ExecutionRecord]:
    """A triggered execution of the served deployment, held in bronze's retries (bronze is
    stopped) with its bronze step RUNNING; bronze restarts on the way out."""
    stack.servers["bronze"].stop(0)
    try:
        execution = trigger_execution(stack.settings, workflow.id, "customers", store=stack.store)
        deadline = time.monotonic() + 60
        while stack.store.get_execution(execution.id).step("bronze").status != "RUNNING":
            assert time.monotonic() < deadline, "the flow run did not start"
            time.sleep(0.2)
        yield execution
    finally:
        stack.restart("bronze")


def wait_for_end(stack: Stack, execution_id: str, timeout: float = 90) -> ExecutionRecord:
    deadline = time.monotonic() + timeout
    while (execution := stack.store.get_execution(execution_id)).active:
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.2)
    return execution


def test_a_terminated_flow_run_ends_its_execution_crashed(
    stack: Stack, sample_workflow: Workflow, served_deployment: subprocess.Popen[bytes]
) -> None:
    """The worker's flow run process gets SIGTERM (a node draining): the on_crashed hook
    ends the execution CRASHED."""
    workflow = stack.add_workflow(sample_workflow)
    with waiting_in_bronze(stack, workflow) as execution:
        runs = psutil.Process(served_deployment.pid).children(recursive=True)
        assert runs, "no flow run process under the served deployment"
        for process in runs:
            process.send_signal(signal.SIGTERM)
        ended = wait_for_end(stack, execution.id)
    assert ended.status == "CRASHED", (ended.status, ended.error)
    assert ended.step("bronze").status == "FAILED"
    assert [s.status for s in ended.steps[1:]] == ["SKIPPED", "SKIPPED"]


def test_flow_runs_are_forks_of_the_warm_fork_server(
    stack: Stack, sample_workflow: Workflow, served_deployment: subprocess.Popen[bytes]
) -> None:
    """A flow run starts as a fork of a process that has imported Prefect and the flow
    already, not as a fresh interpreter importing them (seconds per run), and completes."""
    workflow = stack.add_workflow(sample_workflow)
    with waiting_in_bronze(stack, workflow) as execution:
        servers = [
            p
            for p in psutil.Process(served_deployment.pid).children()
            if "multiprocessing.forkserver" in " ".join(p.cmdline())
        ]
        assert len(servers) == 1, "no fork server beside the served deployment"
        assert "orchestrator.flow" in " ".join(servers[0].cmdline())  # its preloaded modules
        assert servers[0].children(), "the flow run is not a fork of the fork server"
    ended = wait_for_end(stack, execution.id)
    assert ended.status == "COMPLETED", ended.error


def test_run_refuses_bad_ids_before_touching_anything(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"FLOWFORGE_STATE_DIR": str(tmp_path / "state")}
    bad = runner.invoke(app, ["run", "--workflow", "../etc", "--job", "j"], env=env)
    assert bad.exit_code == 1
    assert bad.output.startswith("error: job.workflow_id '../etc' is not a valid ID")
    layer = runner.invoke(app, ["run", "-w", "w", "-j", "j", "--from-layer", "platinum"], env=env)
    assert layer.exit_code == 1 and "from_layer 'platinum' is not one of" in layer.output
    # A whole workflow run (no --job): its ids, and options that are one job's.
    whole = runner.invoke(app, ["run", "-w", "w", "--jobs", "orders,../x"], env=env)
    assert whole.exit_code == 1
    assert whole.output.startswith("error: jobs[1] '../x' is not a valid ID")
    files = runner.invoke(app, ["run", "-w", "w", str(tmp_path / "a.csv")], env=env)
    assert files.exit_code == 1 and "FILES, --forget and --from-layer need --job" in files.output
    both = runner.invoke(app, ["run", "-w", "w", "-j", "j", "--jobs", "a"], env=env)
    assert both.exit_code == 1 and "--jobs is for a whole workflow run" in both.output
    assert not (tmp_path / "state").exists()  # no store was opened


def test_landing_files_and_a_workflow_are_deleted_from_the_cli(
    cli: tuple[CliRunner, dict[str, str]], stack: Stack, sample_workflow: Workflow
) -> None:
    runner, env = cli
    workflow = stack.add_workflow(sample_workflow)  # lands customers.csv, orders.csv, ...
    listed = runner.invoke(app, ["landing", "list", "-w", workflow.id, "-j", "orders"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [line.split("\t")[0] for line in listed.output.splitlines()[1:]] == ["orders.csv"]
    removed = runner.invoke(
        app, ["landing", "rm", "-w", workflow.id, "-j", "orders", "orders.csv"], env=env
    )
    assert removed.exit_code == 0 and "deleted landing/" in removed.output, removed.output
    missing = runner.invoke(
        app, ["landing", "rm", "-w", workflow.id, "-j", "orders", "orders.csv"], env=env
    )
    assert missing.exit_code == 1 and "does not exist" in missing.output
    asked = runner.invoke(app, ["workflows", "rm", workflow.id], env=env, input="n\n")
    assert asked.exit_code == 1  # not confirmed: nothing deleted
    assert stack.store.get_workflow(workflow.id).id == workflow.id
    gone = runner.invoke(app, ["workflows", "rm", workflow.id, "--yes", "--data"], env=env)
    assert gone.exit_code == 0, gone.output
    assert f"deleted workflow {workflow.id}: 0 executions" in gone.output
    assert list(stack.object_store.list(f"landing/{workflow.id}/")) == []
