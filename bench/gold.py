"""Gold against bare DuckDB: the sample models on the same silver Parquet, same S3, same run.

    python -m bench.gold [--size-mb 1024] [--repeat 3]

Generates the customers CSV (cached), casts it to silver-shaped Parquet parts (typed
columns plus audit columns, committed through the manifest protocol as silver does),
uploads the countries dimension, then times

  * the sample customer models through a running `flowforge serve gold`, and
  * the same SQL in a bare DuckDB (httpfs, a secret, views over the same files, one
    COPY ... TO parquet per model on the same S3),

alternating the two, `--repeat` times each. Then the same for the built-in profile.
Prints the median times and the ratio service / bare DuckDB (aim: <= 1.3).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import grpc
import polars as pl

from bench.common import ROOT, ServiceProcess, generated_csv, httpfs_connection, start_s3, timed
from flowforge.dimensions import upload_dimension_file
from flowforge.layout import Dataset, JobKey
from flowforge.manifest import Manifest, commit, start_run
from flowforge.parts import write_parquet
from flowforge.settings import Settings
from flowforge.storage import ObjectStore, s3_url
from flowforge.v1 import common_pb2, gold_pb2, gold_pb2_grpc
from services.gold.profile import profile_sql

JOB = JobKey("bench", "customers")
MODELS = ["customers_by_country", "signups_per_month", "data_quality"]
ROWS_PER_PART = 1_000_000
NULLS = ["", "N/A", "NULL", "null"]
# The gold settings the service process will read (FLOWFORGE_GOLD_* from the environment);
# threads default to every core, as a bare DuckDB's do.
os.environ.setdefault("FLOWFORGE_GOLD_THREADS", str(os.cpu_count() or 2))
SERVICE = Settings(_env_file=None)  # type: ignore[call-arg]


def silver_frame(csv_path: Path) -> pl.DataFrame:
    """The CSV cast the way silver would: trimmed, typed, null markers mapped, audited."""

    def text(name: str) -> pl.Expr:
        value = pl.col(name).str.strip_chars()
        return pl.when(value.is_in(NULLS)).then(None).otherwise(value).alias(name)

    return (
        pl.scan_csv(csv_path, infer_schema=False, truncate_ragged_lines=True)
        .with_row_index("_row_number", offset=1)
        .select(
            text("customer_id").cast(pl.Int64, strict=False).alias("customer_id"),
            text("first_name").alias("first_name"),
            text("last_name").alias("last_name"),
            text("email").str.to_lowercase().alias("email"),
            text("country_code").alias("country_code"),
            pl.coalesce(
                text("signup_date").str.to_date("%Y-%m-%d", strict=False),
                text("signup_date").str.to_date("%d/%m/%Y", strict=False),
            ).alias("signup_date"),
            text("updated_at").str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False),
            text("lifetime_value").cast(pl.Decimal(12, 2), strict=False),
            text("status").str.to_lowercase(),
            pl.lit(csv_path.name).alias("_source_key"),
            pl.col("_row_number").cast(pl.Int64),
        )
        .collect()
    )


def prepare(store: ObjectStore, csv_path: Path) -> tuple[list[str], int]:
    frame = silver_frame(csv_path)
    return commit_silver(store, frame), frame.height


def commit_silver(store: ObjectStore, frame: pl.DataFrame) -> list[str]:
    dataset = Dataset.for_layer("silver", JOB)
    prefix = start_run(store, dataset, "bench")
    parts = [
        write_parquet(store, f"{prefix}part-{i:05d}.parquet", frame.slice(offset, ROWS_PER_PART))
        for i, offset in enumerate(range(0, frame.height, ROWS_PER_PART))
    ]
    commit(
        store, dataset, Manifest(dataset=dataset.prefix, run_id="bench", data_objects=parts), None
    )
    return [p.key for p in parts]


def bare_duckdb(
    settings: Settings, silver: list[str], countries: list[str], models: dict[str, str], out: str
) -> None:
    """What a user would write by hand: views over the same files, a COPY per model."""
    con = httpfs_connection(settings)
    # The service's limits, so the ratio measures the service and not a bigger budget;
    # spilling under the bench's temporary folder (DuckDB's default is ./.tmp).
    con.execute(f"SET memory_limit = '{SERVICE.gold_memory_limit}'")
    con.execute(f"SET threads = {SERVICE.gold_threads}")
    con.execute(f"SET temp_directory = '{settings.state_dir / 'baseline-spill'}'")
    for view, keys in (("silver", silver), ("dim_countries", countries)):
        con.execute(f"CREATE VIEW {view} AS {read_parquet(settings, keys)}")
    for name, sql in models.items():
        con.execute(
            f"COPY ({sql}) TO '{s3_url(settings, out)}{name}.parquet' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
    con.close()


def read_parquet(settings: Settings, keys: list[str]) -> str:
    # Without hive_partitioning=false the run=... folder would become a column.
    files = ", ".join(f"'{s3_url(settings, k)}'" for k in keys)
    return f"SELECT * FROM read_parquet([{files}], hive_partitioning = false)"


def silver_columns(settings: Settings, silver: list[str]) -> list[tuple[str, str]]:
    con = httpfs_connection(settings)
    relation = con.sql(read_parquet(settings, silver))
    columns = [(n, str(t)) for n, t in zip(relation.columns, relation.types, strict=True)]
    con.close()
    return columns


def service_build(address: str, models: dict[str, str], run_id: str, profile: bool) -> None:
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


def compare(
    label: str, repeat: int, service: Callable[[int], None], baseline: Callable[[int], None]
) -> float:
    """Runs both sides alternately, so neither gets the warmer caches; returns the ratio."""
    print(f"{label}:")
    service_times, baseline_times = [], []
    for i in range(repeat):
        baseline_times.append(timed(f"bare DuckDB, run {i + 1}", lambda: baseline(i))[0])  # noqa: B023
        service_times.append(timed(f"gold service, run {i + 1}", lambda: service(i))[0])  # noqa: B023
    s, b = statistics.median(service_times), statistics.median(baseline_times)
    print(f"  median: service {s:.2f} s, bare DuckDB {b:.2f} s, ratio {s / b:.2f}\n", flush=True)
    return s / b


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
                "cast to silver, write its parts", lambda: prepare(store, csv_path)
            )[1]
            total = sum(info.size for key in silver if (info := store.head(key)))
            print(
                f"input: {csv_path.stat().st_size / 1e6:.0f} MB of CSV -> {rows:,} rows, "
                f"{len(silver)} silver parts, {total / 1e6:.0f} MB of Parquet\n"
            )
            dim = upload_dimension_file(
                store, "countries", ROOT / "examples/dimensions/countries.csv"
            )
            countries = [
                Dataset.for_dimension("countries").run_prefix(dim.run_id) + "countries.parquet"
            ]
            service = ServiceProcess("gold", settings, Path(tmp))
            address = service.address
            ratio = compare(
                f"sample models ({', '.join(MODELS)})",
                args.repeat,
                lambda i: service_build(address, models, f"models-{i}", profile=False),
                lambda i: bare_duckdb(settings, silver, countries, models, f"baseline/models-{i}/"),
            )
            profile = {"profile": profile_sql(silver_columns(settings, silver))}
            profile_ratio = compare(
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


if __name__ == "__main__":
    main()
