"""A workflow's own models against bare DuckDB: the same joins, same silver, same S3, same run.

    python -m bench.workflow [--orders-mb 500] [--customers-mb 100] [--repeat 3]

Generates the sample's orders and customers CSVs at those sizes (and a small products
CSV; cached), lands them and runs bronze and silver on each (in this process, with the
sample workflow's silver specs), so the models read real committed silver; uploads the
countries dimension. Then times the step of a workflow run that joins the jobs:

  * GoldService.BuildWorkflow with the sample workflow's models (valid_orders, revenue per
    country and month, best sellers per category, customer lifetime) through a running
    `flowforge serve gold`: guard, sandboxed process, Delta commit of every model, and
  * one bare DuckDB process doing the same: views over the same silver files, one
    COPY ... TO parquet per model on the same S3 in dependency order, each model a view
    for the models after it,

alternating the two, `--repeat` times each. Prints the medians and the ratio service /
bare DuckDB (aim: <= 1.2), and exits non-zero when a model's rows differ between the two.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import grpc

from bench.common import ServiceProcess, generated_csv, httpfs_connection, start_s3, timed
from bench.gold import SERVICE, compare, countries_keys, read_parquet
from flowforge.layout import JobKey, landing_prefix
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.specs.gold import GOLD_SCHEMA, SILVER_SCHEMA, parse_workflow_gold_spec
from flowforge.specs.silver import parse_spec
from flowforge.storage import ObjectStore, s3_url
from flowforge.v1 import gold_pb2, gold_pb2_grpc
from orchestrator.workflows import Workflow, load_workflow_file
from services.bronze.ingest import IngestPlan, ingest
from services.bronze.options import CsvOptions
from services.silver.refine import RefinePlan, refine

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "workflows" / "customer-data.yaml"
WORKFLOW_ID = "bench"


def prepare(
    settings: Settings, store: ObjectStore, workflow: Workflow, csvs: dict[str, Path]
) -> dict[str, list[str]]:
    """Each job's committed silver from its CSV; returns the silver object keys per job."""
    keys = {}
    for job in workflow.jobs:
        key = JobKey(WORKFLOW_ID, job.id)
        with csvs[job.id].open("rb") as handle:
            store.upload(landing_prefix(key) + csvs[job.id].name, handle)
        ingest(store, settings, IngestPlan(key, "bronze-1", CsvOptions.validated()), Deadline())
        result = refine(
            store, settings, RefinePlan(key, "silver-1", parse_spec(job.silver_spec())), Deadline()
        )
        keys[job.id] = [o.key for o in result.data_objects]
        print(f"  {job.id}: {result.rows_out:,} silver rows in {len(keys[job.id])} part(s)")
    return keys


def bare_duckdb(
    settings: Settings,
    workflow: Workflow,
    silver: dict[str, list[str]],
    countries: list[str],
    out: str,
) -> dict[str, int]:
    """What a user would write by hand in one DuckDB: views over the same files, a COPY per
    model in dependency order, each written model a view for the next; rows per model."""
    spec = workflow.workflow_gold_spec()
    assert spec is not None
    gold = parse_workflow_gold_spec(spec, WORKFLOW_ID, list(silver))
    con = httpfs_connection(settings)
    con.execute(f"SET memory_limit = '{SERVICE.gold_memory_limit}'")
    con.execute(f"SET threads = {SERVICE.gold_threads}")
    con.execute(f"SET temp_directory = '{settings.state_dir / 'baseline-spill'}'")
    con.execute(f"CREATE SCHEMA {SILVER_SCHEMA}")
    con.execute(f"CREATE SCHEMA {GOLD_SCHEMA}")
    for job, keys in silver.items():
        con.execute(f'CREATE VIEW {SILVER_SCHEMA}."{job}" AS {read_parquet(settings, keys)}')
    con.execute(f"CREATE VIEW dim_countries AS {read_parquet(settings, countries)}")
    rows = {}
    for model in gold.models:
        target = f"{s3_url(settings, out)}{model.name}.parquet"
        copied = con.execute(
            f"COPY ({model.sql}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
        ).fetchone()
        rows[model.name] = int(copied[0]) if copied else -1
        con.execute(f"CREATE VIEW {GOLD_SCHEMA}.{model.name} AS SELECT * FROM '{target}'")
    con.close()
    return rows


def service_build(address: str, workflow: Workflow, run_id: str) -> dict[str, int]:
    spec = workflow.workflow_gold_spec()
    with grpc.insecure_channel(address) as channel:
        result = gold_pb2_grpc.GoldServiceStub(channel).BuildWorkflow(
            gold_pb2.BuildWorkflowRequest(
                workflow_id=WORKFLOW_ID,
                run_id=run_id,
                spec=spec,
                jobs=[j.id for j in workflow.jobs],
            ),
            timeout=3600,
        )
    return {m.name: m.rows for m in result.models}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders-mb", type=float, default=500)
    parser.add_argument("--customers-mb", type=float, default=100)
    parser.add_argument("--products-mb", type=float, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    workflow = load_workflow_file(SAMPLE)
    sizes = {"orders": args.orders_mb, "customers": args.customers_mb, "products": args.products_mb}
    csvs = {job: generated_csv(job, size) for job, size in sizes.items()}
    print(
        f"limits on both sides: memory {SERVICE.gold_memory_limit}, threads {SERVICE.gold_threads}"
    )
    with tempfile.TemporaryDirectory(prefix="ff-bench-") as tmp:
        s3, settings = start_s3(Path(tmp))
        settings = settings.model_copy(update={"state_dir": Path(tmp)})
        service = None
        try:
            store = ObjectStore(settings)
            print("bronze and silver on the CSVs:")
            silver = timed("  prepared", lambda: prepare(settings, store, workflow, csvs))[1]
            countries = countries_keys(settings, store)
            service = ServiceProcess("gold", settings, Path(tmp))
            address = service.address
            ratio, mismatches = compare(
                "the sample workflow's models",
                args.repeat,
                lambda i: service_build(address, workflow, f"workflow-{i}"),
                lambda i: bare_duckdb(settings, workflow, silver, countries, f"bare/{i}/"),
            )
            print(f"BuildWorkflow / bare DuckDB: {ratio:.2f} (aim <= 1.2)")
            print(f"gold service peak RSS: {service.peak_rss / 1e6:.0f} MB")
        finally:
            if service is not None:
                service.stop()
            s3.stop()
    if mismatches:  # a fast wrong answer is no result
        sys.exit("the service and bare DuckDB disagree: " + "; ".join(mismatches))


if __name__ == "__main__":
    main()
