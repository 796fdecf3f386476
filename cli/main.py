"""The `flowforge` command."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.automation import schedules_app, upload
from cli.tables import app as tables_app
from cli.upkeep import maintain, migrate
from flowforge.errors import FlowForgeError
from flowforge.logs import configure_command_logging, configure_logging
from flowforge.runtime import serve as serve_forever
from flowforge.settings import get_settings
from flowforge.storage import prepare_store
from services.layers import LAYER_SERVICES, create_server

app = typer.Typer(
    no_args_is_help=True,
    help="FlowForge: a medallion pipeline for CSV data.",
    pretty_exceptions_show_locals=False,
)
serve_app = typer.Typer(no_args_is_help=True, help="Run one FlowForge server in the foreground.")
app.add_typer(serve_app, name="serve")
dimensions_app = typer.Typer(
    no_args_is_help=True, help="Reference tables that gold models read as views dim_{name}."
)
app.add_typer(dimensions_app, name="dimensions")
app.add_typer(tables_app, name="tables")

log = logging.getLogger("flowforge.cli")

Host = Annotated[str | None, typer.Option(help="Interface to bind (default: FLOWFORGE_GRPC_HOST).")]


def _serve_layer(layer: str, host: str | None, port: int | None) -> None:
    settings = get_settings().for_component(layer)  # its own S3 identity when set
    configure_logging(settings)
    service = LAYER_SERVICES[layer]
    address = f"{host or settings.grpc_host}:{port if port is not None else service.default_port}"
    server = create_server(layer, settings, address, prepare_store(settings, keep_trying=True))
    log.info("serving", extra={"service": layer, "address": address, "port": server.port})
    serve_forever(server, settings)


def _add_layer_command(layer: str) -> None:
    service = LAYER_SERVICES[layer]

    def command(
        host: Host = None,
        port: Annotated[int, typer.Option(help="Port to listen on.")] = service.default_port,
    ) -> None:
        _serve_layer(layer, host, port)

    command.__doc__ = f"The {layer} layer service (gRPC, default port {service.default_port})."
    serve_app.command(layer)(command)


for _layer in LAYER_SERVICES:
    _add_layer_command(_layer)


@dimensions_app.command("upload")
def dimensions_upload(
    name: Annotated[str, typer.Argument(help="Dimension name; models read it as dim_{name}.")],
    file: Annotated[Path, typer.Argument(help="A .csv or .parquet file.", exists=True)],
) -> None:
    """Store FILE as dimension NAME (replacing the previous version atomically)."""
    from flowforge.dimensions import upload_dimension_file
    from flowforge.ids import validate_id

    settings = get_settings()
    configure_command_logging(settings)
    try:
        validate_id(name, "dimension")  # before the store is touched, so it need not be up
        info = upload_dimension_file(prepare_store(settings), name, file)
    except FlowForgeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"dimension {info.name}: {info.rows} rows, version {info.version}, run {info.run_id}")
    for column, type_ in info.columns:
        print(f"  {column}: {type_}")
    for warning in info.warnings:
        print(f"warning: {warning}")


@dimensions_app.command("list")
def dimensions_list() -> None:
    """List the committed dimensions."""
    from flowforge.dimensions import list_dimensions

    settings = get_settings()
    configure_command_logging(settings)
    try:
        found = list_dimensions(prepare_store(settings))
    except FlowForgeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise typer.Exit(1) from None
    for info in found:
        columns = ", ".join(name for name, _ in info.columns)
        created = f"{info.created_at:%Y-%m-%d %H:%M:%S}Z"
        print(f"{info.name}\tversion {info.version}\t{info.rows} rows\t{created}\t{columns}")


@dimensions_app.command("rm")
def dimensions_rm(
    name: Annotated[str, typer.Argument(help="Dimension name.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete dimension NAME with every version of it (refused while a workflow lists it)."""
    from flowforge.ids import validate_id
    from orchestrator.dimensions import delete_unused_dimension

    try:
        validate_id(name, "dimension")
        settings, store = _store()
        if not yes and not typer.confirm(f"Delete dimension {name} and every version of it?"):
            raise typer.Exit(1)
        objects = delete_unused_dimension(store, prepare_store(settings), name)
    except FlowForgeError as exc:
        raise _fail(exc) from None
    print(f"deleted dimension {name}: {objects} objects")


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Keep the demo's state folder afterwards.")] = False,
) -> None:
    """Run every sample job through the flow on the embedded stack, print what happened."""
    from cli.demo import run_demo

    raise typer.Exit(run_demo(get_settings(), keep=keep))


# -- the orchestrator: workflows, runs, executions, the local stack ------------------
workflows_app = typer.Typer(no_args_is_help=True, help="Workflow definitions (YAML files).")
app.add_typer(workflows_app, name="workflows")
executions_app = typer.Typer(no_args_is_help=True, help="Executions of jobs and their steps.")
app.add_typer(executions_app, name="executions")


def _fail(exc: FlowForgeError) -> typer.Exit:
    print(f"error: {exc.message}", file=sys.stderr)
    return typer.Exit(1)


def _store():  # type: ignore[no-untyped-def]
    from orchestrator.store import Store

    settings = get_settings()
    configure_command_logging(settings, "WARNING")
    return settings, Store.open(settings)


@workflows_app.command("apply")
def workflows_apply(
    file: Annotated[Path, typer.Argument(help="A workflow YAML file.", exists=True)],
) -> None:
    """Validate FILE (errors name the field and line) and store the workflow."""
    from orchestrator.schedules import sync_schedules
    from orchestrator.trigger import prefect_api_configured
    from orchestrator.workflows import load_workflow_file

    try:
        workflow = load_workflow_file(file)
        settings, store = _store()
        store.save_workflow(workflow, file.read_text(encoding="utf-8"))
    except FlowForgeError as exc:
        raise _fail(exc) from None
    jobs = ", ".join(j.id for j in workflow.jobs)
    print(f"workflow {workflow.id}: {len(workflow.jobs)} jobs ({jobs})")
    if any(j.schedule for j in workflow.jobs) and prefect_api_configured():
        try:
            sync_schedules(settings, store)
        except FlowForgeError as exc:  # stored all the same; the API's sync retries
            print(f"warning: schedules not registered with Prefect yet: {exc.message}")


@workflows_app.command("list")
def workflows_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the stored workflows and their jobs."""
    from cli.output import emit

    _, store = _store()
    workflows = store.list_workflows()
    emit(
        ("workflow", "name", "jobs", "updated"),
        [
            (w.id, w.name, ", ".join(w.jobs), f"{w.updated_at:%Y-%m-%d %H:%M:%S}Z")
            for w in workflows
        ],
        [
            {"id": w.id, "name": w.name, "jobs": list(w.jobs), "updated_at": w.updated_at}
            for w in workflows
        ],
        as_json=as_json,
    )


@workflows_app.command("rm")
def workflows_rm(
    workflow: Annotated[str, typer.Argument(help="Workflow id.")],
    data: Annotated[
        bool, typer.Option(help="Also delete its landing files and every table of it.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete WORKFLOW, its jobs and their executions (refused while one runs)."""
    from flowforge.ids import validate_id
    from flowforge.landing import delete_workflow_data

    try:
        validate_id(workflow, "workflow")
        settings, store = _store()
        store.get_workflow(workflow)
        what = "its executions, landing files and tables" if data else "its executions"
        if not yes and not typer.confirm(f"Delete workflow {workflow} and {what}?"):
            raise typer.Exit(1)
        executions = store.delete_workflow(workflow)
        objects = delete_workflow_data(prepare_store(settings), workflow) if data else 0
    except FlowForgeError as exc:
        raise _fail(exc) from None
    print(f"deleted workflow {workflow}: {executions} executions, {objects} objects")


@app.command()
def analyst(
    workflow: Annotated[str, typer.Option(help="Workflow id: its gold tables.")],
) -> None:
    """Print a DuckDB snippet reading WORKFLOW's gold tables with the read-only analyst
    identity (FLOWFORGE_S3_ANALYST_ACCESS_KEY_ID, FLOWFORGE_S3_ANALYST_SECRET_ACCESS_KEY)."""
    from cli.analyst import duckdb_snippet, gold_tables
    from flowforge.ids import validate_id

    try:
        validate_id(workflow, "workflow")
        settings, store = _store()
        print(duckdb_snippet(settings, gold_tables(store.get_workflow(workflow))))
    except FlowForgeError as exc:
        raise _fail(exc) from None


landing_app = typer.Typer(
    no_args_is_help=True, help="A job's landing files (what its next bronze run reads)."
)
app.add_typer(landing_app, name="landing")


@landing_app.command("list")
def landing_list(
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="Workflow id.")],
    job: Annotated[str, typer.Option("--job", "-j", help="Job id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the job's landing files."""
    from cli.output import emit
    from flowforge.landing import landing_files
    from flowforge.layout import JobKey

    try:
        found = landing_files(prepare_store(get_settings()), JobKey.of(workflow, job))
    except FlowForgeError as exc:
        raise _fail(exc) from None
    emit(
        ("file", "bytes", "modified", "etag"),
        [
            (o.key.rsplit("/", 1)[-1], o.size, f"{o.last_modified:%Y-%m-%d %H:%M:%S}", o.etag)
            for o in found
        ],  # fmt: skip
        [
            {"key": o.key, "size_bytes": o.size, "etag": o.etag, "last_modified": o.last_modified}
            for o in found
        ],  # fmt: skip
        as_json=as_json,
    )


@landing_app.command("rm")
def landing_rm(
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="Workflow id.")],
    job: Annotated[str, typer.Option("--job", "-j", help="Job id.")],
    names: Annotated[list[str], typer.Argument(help="Landing file names.")],
) -> None:
    """Delete landing files. Their rows stay in bronze until a run forgets them
    (`flowforge run --forget NAME`) or a full refresh."""
    from flowforge.landing import delete_landing_file
    from flowforge.layout import JobKey

    try:
        key = JobKey.of(workflow, job)
        objects = prepare_store(get_settings())
        for name in names:
            gone = delete_landing_file(objects, key, name)
            print(f"deleted {gone.key}")
    except FlowForgeError as exc:
        raise _fail(exc) from None


@app.command()
def seed() -> None:
    """Store the sample workflow, upload its CSVs to landing and its dimension."""
    from cli.stack import seed as seed_sample

    settings, store = _store()
    try:
        workflow = seed_sample(settings, store)
    except FlowForgeError as exc:
        raise _fail(exc) from None
    print(f"seeded workflow {workflow.id}: jobs {', '.join(j.id for j in workflow.jobs)}, "
          f"dimensions {', '.join(workflow.dimensions)}")  # fmt: skip


@app.command()
def run(
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="Workflow id.")],
    job: Annotated[
        str | None,
        typer.Option("--job", "-j", help="Job id (without it: the whole workflow)."),
    ] = None,
    jobs: Annotated[
        str | None,
        typer.Option(
            help="Whole workflow: only these jobs (comma-separated); the others' committed "
            "silver is reused."
        ),
    ] = None,
    files: Annotated[
        list[Path] | None, typer.Argument(help="CSV files to upload to the job's landing prefix.")
    ] = None,
    from_layer: Annotated[
        str, typer.Option(help="bronze, silver or gold: reuse the committed earlier layers.")
    ] = "bronze",
    full_refresh: Annotated[bool, typer.Option(help="Ingest every landing file again.")] = False,
    forget: Annotated[
        list[str] | None,
        typer.Option(help="A landing file deleted from landing whose rows bronze removes."),
    ] = None,
) -> None:
    """Upload FILEs, run the job through the flow with live progress; exit 1 if it fails.
    Without --job: run the whole workflow (every job, then the workflow's own models).

    Triggers the Prefect deployment when PREFECT_API_URL is set, else runs in this process."""
    if job is None:
        from flowforge.ids import validate_id

        chosen = [j.strip() for j in (jobs or "").split(",") if j.strip()]
        try:  # refused before anything is contacted or written
            if files or forget or from_layer != "bronze":
                raise FlowForgeError(
                    "FILES, --forget and --from-layer need --job: they are one job's"
                )
            validate_id(workflow, "workflow_id")
            for i, name in enumerate(chosen):
                validate_id(name, f"jobs[{i}]")
        except FlowForgeError as exc:
            raise _fail(exc) from None
        _run_workflow(workflow, chosen, full_refresh)
        return
    if jobs is not None:
        raise _fail(FlowForgeError("--jobs is for a whole workflow run: leave out --job"))
    from rich.console import Console

    from cli.automation import upload_files
    from cli.console import follow, report
    from flowforge.ids import validate_file_name
    from flowforge.layout import JobKey
    from orchestrator.flow import plan_layers
    from orchestrator.prefect_server import quiet_console
    from orchestrator.runner import InProcessRunner
    from orchestrator.trigger import prefect_api_configured, trigger_execution

    try:  # refused before anything is contacted or written
        JobKey.of(workflow, job)
        plan_layers(from_layer)
        for file in files or []:  # each name becomes the last part of a landing key
            validate_file_name(file.name, (".csv",))
            if not file.is_file():
                raise FlowForgeError(f"{file} is not a file")
    except FlowForgeError as exc:
        raise _fail(exc) from None
    settings, store = _store()
    console = Console()
    quiet_console()  # the live table shows the progress; run logs still reach Prefect
    try:
        store.get_job(workflow, job)
        if files:  # seen, not a trigger: this run is the one they start
            for key in upload_files(settings, store, workflow, job, files, trigger=False):
                console.print(f"uploaded {key}")
        runner = None if prefect_api_configured() else InProcessRunner(settings, store)
        execution = trigger_execution(
            settings,
            workflow,
            job,
            from_layer,
            full_refresh,
            store=store,
            runner=runner,
            forget=forget or [],
        )
    except FlowForgeError as exc:
        raise _fail(exc) from None
    final = follow(store, execution.id, console)
    if runner is not None:
        runner.join()
    report(console, final, previews=False)
    if final.status != "COMPLETED":
        raise typer.Exit(1)


def _run_workflow(workflow: str, jobs: list[str], full_refresh: bool) -> None:
    from rich.console import Console

    from cli.console import follow_workflow, workflow_report
    from orchestrator.prefect_server import quiet_console
    from orchestrator.runner import InProcessRunner
    from orchestrator.trigger import prefect_api_configured, trigger_workflow_execution

    settings, store = _store()
    console = Console()
    quiet_console()
    try:
        runner = None if prefect_api_configured() else InProcessRunner(settings, store)
        run = trigger_workflow_execution(
            settings, workflow, jobs, full_refresh, store=store, runner=runner
        )
    except FlowForgeError as exc:
        raise _fail(exc) from None
    final = follow_workflow(store, run.id, console)
    if runner is not None:
        runner.join()
    workflow_report(console, final, previews=False)
    if final.status != "COMPLETED":
        raise typer.Exit(1)


@executions_app.command("list")
def executions_list(
    workflow: Annotated[str | None, typer.Option("--workflow", "-w")] = None,
    job: Annotated[str | None, typer.Option("--job", "-j")] = None,
    status: Annotated[str | None, typer.Option(help="e.g. FAILED")] = None,
    limit: Annotated[int, typer.Option(help="Newest first, at most this many.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List executions, newest first (tab-separated when stdout is not a terminal)."""
    from cli.console import STATUS_STYLES, execution_row
    from cli.output import emit

    _, store = _store()
    executions = store.list_executions(workflow, job, status, limit)
    emit(
        ("execution", "job", "status", "layers", "created", "seconds", "error"),
        [execution_row(e) for e in executions],
        [e.to_dict() for e in executions],
        as_json=as_json,
        styles={f"status={s}": style for s, style in STATUS_STYLES.items()},
    )


@executions_app.command("show")
def executions_show(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Show one execution (steps, rows, rejects, balance sheet and gold previews) or one
    workflow execution (its jobs, its models' rows, lineage and previews)."""
    import json

    from rich.console import Console

    from cli.console import report, workflow_report
    from flowforge.errors import NotFound

    _, store = _store()
    try:
        try:
            execution = store.get_execution(execution_id)
        except NotFound:  # a workflow execution's id
            run = store.get_workflow_execution(execution_id)
            if as_json:
                print(json.dumps(run.to_dict(), indent=2))
            else:
                workflow_report(Console(), run)
            return
    except FlowForgeError as exc:
        raise _fail(exc) from None
    if as_json:
        print(json.dumps(execution.to_dict(), indent=2))
    else:
        report(Console(), execution)


@executions_app.command("reconcile")
def executions_reconcile() -> None:
    """End executions whose Prefect flow run crashed, was cancelled or failed silently."""
    from orchestrator.reconcile import reconcile

    settings, store = _store()
    for execution in reconcile(settings, store):
        print(f"{execution.id}\t{execution.status}\t{execution.error or ''}")


@serve_app.command("deployment")
def serve_deployment(
    name: Annotated[str, typer.Option(help="Deployment name (under flowforge-medallion).")] = (
        "customer-data"
    ),
    limit: Annotated[
        int | None, typer.Option(help="Flow runs at once (default: no limit).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address of the /health endpoint.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Serve GET /health on this port (default: none).")
    ] = None,
) -> None:
    """Serve the deployments (the medallion flow, and table maintenance on
    FLOWFORGE_MAINTENANCE_CRON) against PREFECT_API_URL (a worker without a work pool)."""
    if port is not None:
        # Before Prefect is imported: its runner's webserver thread reads the settings
        # Prefect loaded from the environment at import.
        os.environ["PREFECT_RUNNER_SERVER_HOST"] = host
        os.environ["PREFECT_RUNNER_SERVER_PORT"] = str(port)
    from orchestrator.deployment import serve_deployment as serve_flow

    settings = get_settings()
    configure_logging(settings)
    serve_flow(name, limit, health=port is not None, settings=settings)


app.command()(upload)
app.add_typer(schedules_app, name="schedules")


@app.command()
def up(
    no_sample: Annotated[
        bool, typer.Option("--no-sample", help="Start without storing the sample workflow.")
    ] = False,
    api_port: Annotated[
        int | None,
        typer.Option(help="Port of the web UI and API (default: 8000, another when taken)."),
    ] = None,
) -> None:
    """Start everything on this machine: the web UI and API, the embedded stack, a Prefect
    server and its UI, the served deployment; Ctrl-C stops it all."""
    from cli.up import run_up

    raise typer.Exit(run_up(get_settings(), sample=not no_sample, api_port=api_port))


app.command()(maintain)
app.command()(migrate)

# -- health probes (container healthchecks) -------------------------------------------
health_app = typer.Typer(
    no_args_is_help=True, help="Probe a server: exit 0 when healthy, 1 otherwise."
)
app.add_typer(health_app, name="health")


@health_app.command("grpc")
def health_grpc(
    address: Annotated[str, typer.Argument(help="HOST:PORT of a FlowForge gRPC server.")],
    service: Annotated[
        str, typer.Option(help="e.g. flowforge.v1.BronzeService (default: the whole server).")
    ] = "",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 3.0,
    tls_server_name: Annotated[
        str | None, typer.Option(help="Name in the server certificate, when it is not HOST.")
    ] = None,
) -> None:
    """Call grpc.health.v1 Check (TLS and token from FLOWFORGE_GRPC_*); exit 0 when SERVING."""
    import grpc

    from flowforge.health import check_grpc

    try:
        status = check_grpc(address, get_settings(), service, timeout, tls_server_name)
    except grpc.RpcError as exc:
        print(f"{address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"{address} {service or '(server)'}: {status}")
    if status != "SERVING":
        raise typer.Exit(1)


@health_app.command("http")
def health_http(
    url: Annotated[str, typer.Argument(help="e.g. http://127.0.0.1:8000/healthz")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 3.0,
) -> None:
    """GET URL; exit 0 on a 2xx answer."""
    import httpx

    from flowforge.health import check_http

    try:
        status = check_http(url, timeout)
    except httpx.HTTPError as exc:
        print(f"{url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"{url}: {status}")
    if not 200 <= status < 300:
        raise typer.Exit(1)


@serve_app.command("api")
def serve_api(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """The executions API and web UI (HTTP, default port 8000; FLOWFORGE_API_TOKEN)."""
    from orchestrator.api.server import serve_api as serve

    settings = get_settings()
    configure_logging(settings)
    serve(settings, host, port)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
