"""The whole pipeline through the flow against one bare process doing the same work.

    python -m bench.pipeline                       # 1 MB p50 of 10, then ~100 MB
    python -m bench.pipeline --sizes 100 1024      # also ~1 GB (CSV generated once, cached)

Starts an embedded S3, `flowforge serve bronze|silver|gold` as subprocesses, a Prefect
server and the SQLite executions store, then:

  * 1 MB job: the flow from trigger to committed gold, p50 of 10 runs on the warm stack
    (full refresh each time, after one warm-up run; aim: under 2 s);
  * each --sizes job (MB of customers CSV): the flow once, and the same bronze -> silver ->
    gold in one bare process on the same CSV in the same S3: polars lazy (CSV -> raw text
    Parquet with audit columns; the silver casts, drop rules and latest-wins dedupe of
    bench/silver.py) then DuckDB for the gold models (bench/gold.py's bare DuckDB, the
    faster engine for each stage in those benchmarks). Prints the ratio flow / bare.

The sample workflow's customers job runs with skip_profile, as the baseline has no profile.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from bench.common import ROOT, ServiceProcess, generated_csv, start_s3
from bench.gold import bare_duckdb
from bench.silver import run_polars
from flowforge.dimensions import upload_dimension_file
from flowforge.layout import Dataset, JobKey, landing_prefix
from flowforge.manifest import read_committed
from flowforge.settings import Settings
from flowforge.storage import ObjectStore, polars_storage_options, s3_url
from orchestrator.flow import medallion, open_store, use_settings
from orchestrator.prefect_server import PrefectServer, flush_clients, quiet_console
from orchestrator.store import Store
from orchestrator.workflows import Workflow, load_workflow_file

WORKFLOW = ROOT / "examples" / "workflows" / "customer-data.yaml"
MODELS = ["customers_by_country", "signups_per_month", "data_quality"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="*", default=[100])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    quiet_console()
    with tempfile.TemporaryDirectory(prefix="ff-bench-pipeline-") as tmp:
        workdir = Path(tmp)
        s3, settings = start_s3(workdir)
        services = []
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
                use_settings(flow_settings)
                run(flow_settings, open_store(flow_settings), args.sizes, args.runs)
                flush_clients()
        finally:
            for service in services:
                service.stop()
            s3.stop()


LAYERS = ("bronze", "silver", "gold")


def _api(url: str):  # type: ignore[no-untyped-def]
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: url})


def run(settings: Settings, store: Store, sizes: list[float], runs: int) -> None:
    objects = ObjectStore(settings)
    upload_dimension_file(objects, "countries", ROOT / "examples/dimensions/countries.csv")
    sample = load_workflow_file(WORKFLOW)
    customers = sample.job("customers")
    gold = customers.gold.model_copy(update={"skip_profile": True})
    job = customers.model_copy(update={"gold": gold})

    def workflow(name: str, csv: Path) -> Workflow:
        defined = sample.model_copy(update={"id": name, "jobs": [job]})
        store.save_workflow(defined)
        with csv.open("rb") as handle:
            objects.upload(landing_prefix(JobKey(name, "customers")) + "customers.csv", handle)
        return defined

    small = generated_csv("customers", 1)
    workflow("bench-1mb", small)
    print(f"1 MB job ({small.stat().st_size / 1e6:.2f} MB of CSV), {runs} runs after a warm-up:")
    times = [flow_seconds("bench-1mb") for _ in range(runs + 1)][1:]
    print(
        f"  trigger -> committed gold: p50 {statistics.median(times):.2f} s, "
        f"min {min(times):.2f} s, max {max(times):.2f} s  (aim: p50 < 2 s)\n",
        flush=True,
    )
    for size in sizes:
        csv = generated_csv("customers", size)
        name = f"bench-{size:g}mb"
        workflow(name, csv)
        csv_mb = csv.stat().st_size / 1e6
        print(f"{csv_mb:,.0f} MB of CSV:", flush=True)
        flow = flow_seconds(name)
        print(f"  flow (bronze, silver, gold services)  {flow:8.2f} s", flush=True)
        bare, rows = bare_pipeline(settings, objects, name)
        print(f"  one bare process (polars + DuckDB)    {bare:8.2f} s  ({rows:,} silver rows)")
        print(f"  ratio flow / bare: {flow / bare:.2f}  (aim: <= 1.5)\n", flush=True)


def flow_seconds(workflow_id: str) -> float:
    started = time.perf_counter()
    result = medallion(workflow_id=workflow_id, job_id="customers", full_refresh=True)
    seconds = time.perf_counter() - started
    assert result["status"] == "COMPLETED", result
    return seconds


def bare_pipeline(settings: Settings, objects: ObjectStore, name: str) -> tuple[float, int]:
    """bronze -> silver -> gold by hand, reading and writing the same S3."""
    options = polars_storage_options(settings)
    key = landing_prefix(JobKey(name, "customers")) + "customers.csv"
    info = objects.head(key)
    assert info is not None
    bronze_key = f"bench/bare/{name}/bronze.parquet"
    started = time.perf_counter()
    raw = pl.scan_csv(
        s3_url(settings, key),
        storage_options=options,
        infer_schema=False,
        truncate_ragged_lines=True,
        missing_columns="insert",
    )
    raw.with_row_index("_row_number", offset=1).with_columns(
        _row_hash=pl.concat_str(pl.all().exclude("_row_number").fill_null("")).hash(),
        _source_key=pl.lit(key),
        _source_etag=pl.lit(info.etag),
        _ingested_at=pl.lit(datetime.now(UTC)),
        _run_id=pl.lit("bare"),
    ).sink_parquet(s3_url(settings, bronze_key), storage_options=options, compression="zstd")
    _, rows = run_polars(settings, [s3_url(settings, bronze_key)])  # writes bench/polars.parquet
    committed = read_committed(objects, Dataset.for_dimension("countries"))
    assert committed is not None
    countries = [o.key for o in committed.manifest.data_objects]
    models = {m: (ROOT / f"examples/models/customer-data/customers/{m}.sql").read_text()
              for m in MODELS}  # fmt: skip
    bare_duckdb(settings, ["bench/polars.parquet"], countries, models, f"bench/bare/{name}/gold/")
    return time.perf_counter() - started, rows


if __name__ == "__main__":
    main()
