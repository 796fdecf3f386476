"""The whole pipeline through the orchestrator against one bare process doing the same work.

    python -m bench.pipeline                       # 1 MB p50 of 10, then ~100 MB
    python -m bench.pipeline --sizes 100 1024      # also ~1 GB (CSV generated once, cached)
    python -m bench.pipeline --sizes --runs 3      # the 1 MB figures only

Starts an embedded S3, `flowforge serve bronze|silver|gold` as subprocesses, a Prefect
server, the SQLite executions store and `flowforge serve deployment` (the Prefect runner,
as `flowforge up` starts it; each flow run is a child process of it), then measures:

  * 1 MB job, --runs runs after one warm-up, full refresh each time; p50/min/max of
      - trigger -> committed gold: trigger_execution() (what `flowforge run` and the HTTP
        API call) until the execution has ended in the store (aim: p50 under 2 s), with
        the store's created -> finished beside it and where the time goes (runner poll
        wait, flow-run process start-up, each layer, the flow's own bookkeeping);
      - flow in process: medallion() called in this process, no trigger, no runner;
  * each --sizes job (MB of customers CSV): the triggered flow once, then the same
    bronze -> silver -> gold in one bare process on the same CSV in the same S3:
      - polars lazy: CSV -> raw text Parquet with the audit columns, then the silver
        casts, drop rules and latest-wins dedupe (bench/silver.py's run_polars); the
        gold models are DuckDB SQL, so gold runs in DuckDB (bench/gold.py's bare_duckdb);
      - DuckDB: the same three steps in DuckDB over httpfs (read_csv all_varchar ->
        Parquet, bench/silver.py's run_duckdb, bench/gold.py's bare_duckdb);
    each with its silver row count beside the flow's, and the ratio flow / the faster.

The sample workflow's customers job runs with skip_profile, as the baselines have no profile.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from bench.common import (
    ROOT,
    ServiceProcess,
    generated_csv,
    httpfs_connection,
    orchestrator_env,
    start_runner,
    start_s3,
    stop_process,
)
from bench.gold import bare_duckdb
from bench.silver import run_duckdb, run_polars
from flowforge import tables
from flowforge.dimensions import upload_dimension_file
from flowforge.layout import LAYERS, JobKey, landing_prefix
from flowforge.settings import Settings
from flowforge.storage import ObjectStore, polars_storage_options, s3_url
from flowforge.tables import TableRef
from orchestrator.flow import medallion
from orchestrator.prefect_server import PrefectServer, flush_clients, quiet_console
from orchestrator.runner import InProcessRunner
from orchestrator.store import ExecutionRecord, Store
from orchestrator.trigger import trigger_execution
from orchestrator.workflows import Workflow, load_workflow_file

WORKFLOW = ROOT / "examples" / "workflows" / "customer-data.yaml"
MODELS = ["customers_by_country", "signups_per_month", "data_quality"]

JOB = "customers"
TRIGGER = "trigger -> flow run scheduled"
POLL_WAIT = "runner poll wait (scheduled -> pending)"
START_UP = "flow-run process start-up (pending -> running)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="*", default=[100])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--runner-poll",
        type=int,
        help="PREFECT_RUNNER_POLL_FREQUENCY for the runner (default: what `serve deployment` uses)",
    )
    args = parser.parse_args()
    quiet_console()
    with tempfile.TemporaryDirectory(prefix="ff-bench-pipeline-") as tmp:
        workdir = Path(tmp)
        s3, settings = start_s3(workdir)
        services: list[ServiceProcess] = []
        runner: subprocess.Popen[bytes] | None = None
        try:
            services = [ServiceProcess(layer, settings, workdir) for layer in LAYERS]
            flow_settings = settings.model_copy(
                update={
                    "state_dir": workdir / "state",
                    **{
                        f"{layer}_address": s.address
                        for layer, s in zip(LAYERS, services, strict=True)
                    },
                }
            )
            with PrefectServer(workdir / "prefect") as prefect, _api(prefect.api_url):
                env = orchestrator_env(flow_settings, prefect.client_env())
                if args.runner_poll is not None:
                    env["PREFECT_RUNNER_POLL_FREQUENCY"] = str(args.runner_poll)
                runner = start_runner(env, workdir / "runner.log", flow_settings.deployment_name)
                run(flow_settings, Store.open(flow_settings), args.sizes, args.runs)
                stop_process(runner)  # before the Prefect server it talks to
                flush_clients()
        finally:
            stop_process(runner)
            for service in services:
                service.stop()
            s3.stop()


def _api(url: str):  # type: ignore[no-untyped-def]
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: url})


def run(settings: Settings, store: Store, sizes: list[float], runs: int) -> None:
    objects = ObjectStore(settings)
    upload_dimension_file(objects, "countries", ROOT / "examples/dimensions/countries.csv")
    land = lander(store, objects)
    small = generated_csv(JOB, 1)
    land("bench-1mb", small)
    print(f"1 MB job ({small.stat().st_size / 1e6:.2f} MB of CSV), {runs} runs after a warm-up:")
    triggered = [triggered_run(settings, store, "bench-1mb") for _ in range(runs + 1)][1:]
    in_process = [
        flow_seconds(InProcessRunner(settings, store), "bench-1mb") for _ in range(runs + 1)
    ][1:]
    spread("trigger -> committed gold", [t.seconds for t in triggered], "  (aim: p50 < 2 s)")
    spread("  created -> finished (store)", [t.store_seconds for t in triggered])
    spread("flow in process (medallion())", in_process)
    print("where the time goes, in the median run:")
    for part, seconds in median_run(triggered).parts.items():
        print(f"  {part:<48} {seconds:6.2f} s")
    print(flush=True)
    for size in sizes:
        csv = generated_csv(JOB, size)
        name = f"bench-{size:g}mb"
        land(name, csv)
        compare(settings, objects, store, name, csv)


def lander(store: Store, objects: ObjectStore) -> Callable[[str, Path], Workflow]:
    """Saves the sample workflow with only its customers job (no profile) under a new id
    and lands a CSV for that job."""
    sample = load_workflow_file(WORKFLOW)
    customers = sample.job(JOB)
    gold = customers.gold.model_copy(update={"skip_profile": True})
    job = customers.model_copy(update={"gold": gold})

    def land(workflow_id: str, csv: Path) -> Workflow:
        defined = sample.model_copy(update={"id": workflow_id, "jobs": [job]})
        store.save_workflow(defined)
        with csv.open("rb") as handle:
            objects.upload(landing_key(workflow_id), handle)
        return defined

    return land


def landing_key(workflow_id: str) -> str:
    return landing_prefix(JobKey(workflow_id, JOB)) + f"{JOB}.csv"


def compare(settings: Settings, objects: ObjectStore, store: Store, name: str, csv: Path) -> None:
    """The triggered flow once, then both bare variants; prints times, rows and ratio."""
    print(f"{csv.stat().st_size / 1e6:,.0f} MB of CSV:", flush=True)
    flow = triggered_run(settings, store, name)
    shown = {
        "trigger": TRIGGER,
        "poll wait": POLL_WAIT,
        "start-up": START_UP,
        **{layer: layer for layer in LAYERS},
    }
    rest = flow.seconds - sum(flow.parts[part] for part in shown.values())
    layers = ", ".join(f"{label} {flow.parts[part]:.1f} s" for label, part in shown.items())
    layers += f", the rest {rest:.1f} s"
    print(f"  {'flow, trigger -> committed gold':<47} {flow.seconds:8.2f} s  "
          f"({flow.silver_rows:,} silver rows; {layers})", flush=True)  # fmt: skip
    bare = {
        "polars lazy (+ DuckDB gold)": bare_polars(settings, objects, name),
        "DuckDB": bare_all_duckdb(settings, objects, name),
    }
    for label, (seconds, rows) in bare.items():
        same = "same as the flow" if rows == flow.silver_rows else "DIFFERENT from the flow"
        print(
            f"  {'one bare process, ' + label:<47} {seconds:8.2f} s  ({rows:,} silver rows, {same})"
        )
    fastest = min(bare, key=lambda label: bare[label][0])
    print(f"  ratio flow / faster bare ({fastest}): {flow.seconds / bare[fastest][0]:.2f}"
          "  (aim: <= 1.5)\n", flush=True)  # fmt: skip


def spread(label: str, times: list[float], aim: str = "") -> None:
    print(f"  {label:<32} p50 {statistics.median(times):6.2f} s, min {min(times):6.2f} s, "
          f"max {max(times):6.2f} s{aim}", flush=True)  # fmt: skip


# --- the flow ------------------------------------------------------------------------------


def flow_seconds(in_process: InProcessRunner, workflow_id: str) -> float:
    """medallion() in this process: the flow and the services, without trigger or runner."""
    started = time.perf_counter()
    result = in_process.run(medallion, workflow_id=workflow_id, job_id=JOB, full_refresh=True)
    seconds = time.perf_counter() - started
    assert result["status"] == "COMPLETED", result
    return seconds


@dataclass
class TriggeredRun:
    seconds: float  # trigger_execution() called -> the execution seen ended in the store
    store_seconds: float  # the store's created_at -> finished_at
    silver_rows: int
    parts: dict[str, float] = field(default_factory=dict)


def triggered_run(settings: Settings, store: Store, workflow_id: str) -> TriggeredRun:
    """trigger_execution() through the served deployment, then waits for the execution."""
    called = datetime.now(UTC)
    started = time.perf_counter()
    execution = trigger_execution(settings, workflow_id, JOB, full_refresh=True, store=store)
    returned = time.perf_counter()
    done = wait_ended(store, execution.id)
    seconds = time.perf_counter() - started
    assert done.status == "COMPLETED", (done.status, done.error)
    assert done.finished_at is not None and done.flow_run_id is not None
    parts = timeline(done, flow_run_states(done.flow_run_id), called)
    ended = (done.finished_at - called).total_seconds()
    parts["execution ended -> seen by the bench"] = seconds - ended
    parts["(trigger_execution() call itself)"] = returned - started
    silver = done.step("silver").rows_out
    assert silver is not None
    return TriggeredRun(
        seconds, (done.finished_at - done.created_at).total_seconds(), silver, parts
    )


def wait_ended(store: Store, execution_id: str, timeout: float = 3600) -> ExecutionRecord:
    deadline = time.monotonic() + timeout
    while (execution := store.get_execution(execution_id)).active:
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_id} still {execution.status}")
        time.sleep(0.02)
    return execution


def flow_run_states(flow_run_id: str) -> dict[str, datetime]:
    """When the flow run entered each state (first time), from the Prefect API."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(UUID(flow_run_id))
    entered: dict[str, datetime] = {}
    for state in sorted(states, key=lambda s: s.timestamp):
        entered.setdefault(state.type.value, state.timestamp)
    return entered


def timeline(
    execution: ExecutionRecord, states: dict[str, datetime], called: datetime
) -> dict[str, float]:
    """The execution's life in consecutive parts, from the store's and Prefect's clocks."""

    def between(start: datetime | None, end: datetime | None) -> float:
        return (end - start).total_seconds() if start and end else float("nan")

    steps = [execution.step(layer) for layer in LAYERS]
    layers = {s.layer: between(s.started_at, s.finished_at) for s in steps}
    body = between(execution.started_at, execution.finished_at)
    return {
        TRIGGER: between(called, states.get("SCHEDULED")),
        POLL_WAIT: between(states.get("SCHEDULED"), states.get("PENDING")),
        START_UP: between(states.get("PENDING"), states.get("RUNNING")),
        "flow running -> execution started": between(states.get("RUNNING"), execution.started_at),
        **layers,
        "flow's own work between/after layers": body - sum(layers.values()),
    }


def median_run(runs: list[TriggeredRun]) -> TriggeredRun:
    """The run whose trigger -> committed gold time is the median (its parts add up)."""
    return sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]


# --- one bare process ----------------------------------------------------------------------


def bare_polars(settings: Settings, objects: ObjectStore, name: str) -> tuple[float, int]:
    """bronze and silver as polars lazy queries, gold in DuckDB; the same S3."""
    bronze = f"bench/bare/{name}/polars-bronze.parquet"
    started = time.perf_counter()
    polars_bronze(settings, objects, landing_key(name), bronze)
    _, rows = run_polars(settings, [s3_url(settings, bronze)])  # writes bench/polars.parquet
    gold(settings, objects, "bench/polars.parquet", f"bench/bare/{name}/polars-gold/")
    return time.perf_counter() - started, rows


def bare_all_duckdb(settings: Settings, objects: ObjectStore, name: str) -> tuple[float, int]:
    """bronze, silver and gold in DuckDB over httpfs; the same S3."""
    bronze = f"bench/bare/{name}/duckdb-bronze.parquet"
    started = time.perf_counter()
    duckdb_bronze(settings, objects, landing_key(name), bronze)
    _, rows = run_duckdb(settings, [s3_url(settings, bronze)])  # writes bench/duckdb
    gold(settings, objects, "bench/duckdb", f"bench/bare/{name}/duckdb-gold/")
    return time.perf_counter() - started, rows


def polars_bronze(settings: Settings, objects: ObjectStore, key: str, out: str) -> None:
    """CSV -> raw text Parquet with the audit columns, as one polars lazy query.

    Like the bronze service, a row with the wrong number of fields is rejected: polars pads
    or truncates such rows without telling, so a second scan of the raw lines counts each
    line's fields (commas outside quotes) and the two scans are put side by side (this
    assumes no line breaks inside quoted fields, true of the generated CSVs)."""
    options = polars_storage_options(settings)
    url = s3_url(settings, key)
    rows = pl.scan_csv(url, storage_options=options, infer_schema=False, truncate_ragged_lines=True)
    lines = pl.scan_csv(
        url,
        storage_options=options,
        infer_schema=False,
        has_header=False,
        skip_rows=1,
        separator="\x1f",
        quote_char=None,
        new_columns=["line"],
    )
    fields = lines.select(
        _fields=pl.col("line").str.replace_all(r'"(?:[^"]|"")*"', "").str.count_matches(",") + 1
    )
    width = len(rows.collect_schema())
    pl.concat([rows, fields], how="horizontal").with_row_index("_row_number", offset=1).filter(
        pl.col("_fields") == width
    ).drop("_fields").with_columns(
        _row_hash=pl.concat_str(pl.all().exclude("_row_number").fill_null("")).hash(),
        _source_key=pl.lit(key),
        _source_etag=pl.lit(etag(objects, key)),
        _ingested_at=pl.lit(datetime.now(UTC)),
        _run_id=pl.lit("bare"),
    ).sink_parquet(s3_url(settings, out), storage_options=options, compression="zstd")


def duckdb_bronze(settings: Settings, objects: ObjectStore, key: str, out: str) -> None:
    """CSV -> raw text Parquet with the audit columns, as one DuckDB statement; a row with
    the wrong number of fields is skipped (ignore_errors), as bronze rejects it."""
    con = httpfs_connection(settings, settings.state_dir / "bare-duckdb-spill")
    try:
        con.execute(
            f"""COPY (
  SELECT row_number() OVER () AS _row_number, csv.*, hash(csv) AS _row_hash,
         $key AS _source_key, $etag AS _source_etag, now() AS _ingested_at,
         'bare' AS _run_id
  FROM read_csv('{s3_url(settings, key)}', all_varchar = true, header = true,
                ignore_errors = true) AS csv
) TO '{s3_url(settings, out)}' (FORMAT parquet, COMPRESSION zstd)""",
            {"key": key, "etag": etag(objects, key)},
        )
    finally:
        con.close()


def gold(settings: Settings, objects: ObjectStore, silver: str, out: str) -> None:
    ref = TableRef.dimension("countries")
    bucket = f"s3://{settings.s3_bucket}/"
    table = tables.require(settings, ref, "dimension 'countries'")
    countries = [uri.removeprefix(bucket) for uri in tables.version_files(table, ref)]
    models = {m: (ROOT / f"examples/models/customer-data/customers/{m}.sql").read_text()
              for m in MODELS}  # fmt: skip
    bare_duckdb(settings, [silver], countries, models, out)


def etag(objects: ObjectStore, key: str) -> str:
    info = objects.head(key)
    assert info is not None
    return str(info.etag)


if __name__ == "__main__":
    main()
