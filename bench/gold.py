"""Gold against bare DuckDB: the sample models on the same silver Parquet, same S3, same run.

    python -m bench.gold [--size-mb 1024] [--repeat 3]

Generates the customers CSV (cached), lands it and runs bronze and silver on it (in this
process, with the sample's silver spec) so gold reads the real committed silver output,
uploads the countries dimension, then times

  * the sample customer models through a running `flowforge serve gold`, and
  * the same SQL in a bare DuckDB (httpfs, a secret, views over the same files, one
    COPY ... TO parquet per model on the same S3),

alternating the two, `--repeat` times each. Then the same for the built-in profile.
Prints the median times and the ratio service / bare DuckDB (aim: <= 1.3), and exits
non-zero when a model's output rows differ between the two (they read the same views).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import grpc
import yaml
from google.protobuf import json_format

from bench.common import ROOT, ServiceProcess, generated_csv, httpfs_connection, start_s3, timed
from flowforge import tables
from flowforge.dimensions import upload_dimension_file
from flowforge.duckdb_s3 import read_parquet_sql
from flowforge.layout import JobKey, landing_prefix
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.specs.silver import parse_spec
from flowforge.storage import ObjectStore, s3_url
from flowforge.tables import TableRef
from flowforge.v1 import common_pb2, gold_pb2, gold_pb2_grpc, silver_pb2
from services.bronze.ingest import IngestPlan, ingest
from services.bronze.options import CsvOptions
from services.gold.profile import profile_sql
from services.silver.refine import RefinePlan, refine

JOB = JobKey("bench", "customers")
MODELS = ["customers_by_country", "signups_per_month", "data_quality"]
SILVER_SPEC = yaml.safe_load((ROOT / "examples" / "silver" / "customers.yaml").read_text())
# The gold settings the service process will read (FLOWFORGE_GOLD_* from the environment);
# threads default to every core, as a bare DuckDB's do.
os.environ.setdefault("FLOWFORGE_GOLD_THREADS", str(os.cpu_count() or 2))
SERVICE = Settings(_env_file=None)  # type: ignore[call-arg]


def prepare(settings: Settings, store: ObjectStore, csv_path: Path) -> tuple[list[str], int]:
    """The committed silver of the CSV: landed, ingested by bronze, refined by silver with
    examples/silver/customers.yaml; returns its object keys and rows."""
    with csv_path.open("rb") as handle:
        store.upload(landing_prefix(JOB) + csv_path.name, handle)
    ingest(store, settings, IngestPlan(JOB, "bronze-1", CsvOptions.validated()), Deadline())
    spec = json_format.ParseDict(SILVER_SPEC, silver_pb2.SilverSpec())
    plan = RefinePlan(JOB, "silver-1", parse_spec(spec))
    silver = refine(store, settings, plan, Deadline())
    return [o.key for o in silver.data_objects], silver.rows_out


def countries_keys(settings: Settings, store: ObjectStore) -> list[str]:
    """The sample's countries dimension, committed: the object keys of its files."""
    dim = upload_dimension_file(store, "countries", ROOT / "examples/dimensions/countries.csv")
    ref = TableRef.dimension("countries")
    table = tables.require(settings, ref, "countries", dim.version)
    bucket = f"s3://{settings.s3_bucket}/"
    return [uri.removeprefix(bucket) for uri in tables.version_files(table, ref)]


def bare_duckdb(
    settings: Settings, silver: list[str], countries: list[str], models: dict[str, str], out: str
) -> dict[str, int]:
    """What a user would write by hand: views over the same files, a COPY per model;
    returns each model's rows."""
    con = httpfs_connection(settings)
    # The service's limits, so the ratio measures the service and not a bigger budget;
    # spilling under the bench's temporary folder (DuckDB's default is ./.tmp).
    con.execute(f"SET memory_limit = '{SERVICE.gold_memory_limit}'")
    con.execute(f"SET threads = {SERVICE.gold_threads}")
    con.execute(f"SET temp_directory = '{settings.state_dir / 'baseline-spill'}'")
    for view, keys in (("silver", silver), ("dim_countries", countries)):
        con.execute(f"CREATE VIEW {view} AS {read_parquet(settings, keys)}")
    rows = {}
    for name, sql in models.items():
        copied = con.execute(
            f"COPY ({sql}) TO '{s3_url(settings, out)}{name}.parquet' "
            "(FORMAT parquet, COMPRESSION zstd)"
        ).fetchone()
        rows[name] = int(copied[0]) if copied else -1
    con.close()
    return rows


def read_parquet(settings: Settings, keys: list[str]) -> str:
    """The same view SQL as the service's (services/gold/engine.py)."""
    return read_parquet_sql([s3_url(settings, k) for k in keys])


def silver_columns(settings: Settings, silver: list[str]) -> list[tuple[str, str]]:
    con = httpfs_connection(settings)
    relation = con.sql(read_parquet(settings, silver))
    columns = [(n, str(t)) for n, t in zip(relation.columns, relation.types, strict=True)]
    con.close()
    return columns


def service_build(
    address: str, models: dict[str, str], run_id: str, profile: bool
) -> dict[str, int]:
    """Builds the models (and the profile) through the service; returns each model's rows."""
    with grpc.insecure_channel(address) as channel:
        result = gold_pb2_grpc.GoldServiceStub(channel).Build(
            gold_pb2.BuildRequest(
                job=common_pb2.JobRef(workflow_id=JOB.workflow_id, job_id=JOB.job_id),
                run_id=run_id,
                spec=gold_pb2.GoldSpec(
                    models=[gold_pb2.Model(name=n, sql=s) for n, s in models.items()],
                    dimensions=["countries"],
                    skip_profile=not profile,
                ),
            ),
            timeout=3600,
        )
    assert len(result.models) == len(models) + profile
    return {m.name: m.rows for m in result.models}


def compare(
    label: str,
    repeat: int,
    service: Callable[[int], dict[str, int]],
    baseline: Callable[[int], dict[str, int]],
) -> tuple[float, list[str]]:
    """Runs both sides alternately, so neither gets the warmer caches; returns the ratio
    and, per run whose outputs differ in rows, what each side wrote."""
    print(f"{label}:")
    service_times, baseline_times, mismatches = [], [], []
    for i in range(repeat):
        seconds, expected = timed(f"bare DuckDB, run {i + 1}", lambda: baseline(i))  # noqa: B023
        baseline_times.append(seconds)
        seconds, got = timed(f"gold service, run {i + 1}", lambda: service(i))  # noqa: B023
        service_times.append(seconds)
        if got != expected:
            mismatch = f"{label}, run {i + 1}: rows {got} from the service, {expected} bare"
            print(f"  WARNING: {mismatch}", flush=True)
            mismatches.append(mismatch)
    s, b = statistics.median(service_times), statistics.median(baseline_times)
    print(f"  median: service {s:.2f} s, bare DuckDB {b:.2f} s, ratio {s / b:.2f}\n", flush=True)
    return s / b, mismatches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    csv_path = generated_csv("customers", args.size_mb)
    models = {
        m: (ROOT / "examples/models/customer-data/customers" / f"{m}.sql").read_text()
        for m in MODELS
    }
    print(
        f"limits on both sides: memory {SERVICE.gold_memory_limit}, threads {SERVICE.gold_threads}"
    )
    with tempfile.TemporaryDirectory(prefix="ff-bench-") as tmp:
        s3, settings = start_s3(Path(tmp))
        settings = settings.model_copy(update={"state_dir": Path(tmp)})
        service = None
        try:
            store = ObjectStore(settings)
            silver, rows = timed(
                "bronze and silver on the CSV", lambda: prepare(settings, store, csv_path)
            )[1]
            total = sum(info.size for key in silver if (info := store.head(key)))
            print(
                f"input: {csv_path.stat().st_size / 1e6:.0f} MB of CSV -> {rows:,} rows, "
                f"{len(silver)} silver parts, {total / 1e6:.0f} MB of Parquet\n"
            )
            countries = countries_keys(settings, store)
            service = ServiceProcess("gold", settings, Path(tmp))
            address = service.address
            ratio, mismatches = compare(
                f"sample models ({', '.join(MODELS)})",
                args.repeat,
                lambda i: service_build(address, models, f"models-{i}", profile=False),
                lambda i: bare_duckdb(settings, silver, countries, models, f"baseline/models-{i}/"),
            )
            profile = {"profile": profile_sql(silver_columns(settings, silver))}
            profile_ratio, profile_mismatches = compare(
                "built-in profile",
                args.repeat,
                lambda i: service_build(address, {}, f"profile-{i}", profile=True),
                lambda i: bare_duckdb(
                    settings, silver, countries, profile, f"baseline/profile-{i}/"
                ),
            )
            print(f"gold service / bare DuckDB: models {ratio:.2f} (aim <= 1.3), ", end="")
            print(f"profile {profile_ratio:.2f}")
            print(f"gold service peak RSS: {service.peak_rss / 1e6:.0f} MB")
        finally:
            if service is not None:
                service.stop()
            s3.stop()
    if mismatches or profile_mismatches:  # a fast wrong answer is no result
        sys.exit(
            "gold service and bare DuckDB disagree: " + "; ".join(mismatches + profile_mismatches)
        )


if __name__ == "__main__":
    main()
