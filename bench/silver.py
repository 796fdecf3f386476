"""Silver against one DuckDB statement and one polars lazy query doing the same work.

    python -m bench.silver                  # ~1 GB of customers CSV (generated once, cached)
    python -m bench.silver --size-mb 50     # a quick run while developing

Starts an embedded S3, lands the CSV and ingests it with bronze, then refines the bronze
dataset three ways, each reading the same bronze Parquet objects from the same S3 and
writing Parquet back to it: the silver service (`flowforge serve silver` in a subprocess,
whose peak RSS is sampled), one DuckDB statement and one polars lazy query. The baselines
do the same casting, filtering (casts, required id, the email and range drop rules) and
latest-wins dedupe as examples/silver/customers.yaml, and read text the way the service
does: the same trimmed whitespace (non-breaking and ideographic spaces too) and, for
`updated_at`, the ISO 8601 variants the service accepts (date only, minutes, fractions,
offsets converted to UTC). They skip what only the service does (quarantine objects, rule
counts, duplicate report, manifest).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import grpc
import polars as pl
import psutil
import yaml
from google.protobuf import json_format
from pydantic import SecretStr

from bench.common import ROOT, generated_csv
from flowforge.casting import WHITESPACE, Parser, parsers
from flowforge.embedded import EmbeddedS3, pick_ports
from flowforge.layout import JobKey, landing_prefix
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.specs.silver_model import SilverType
from flowforge.storage import ObjectStore, polars_storage_options, s3_url
from flowforge.v1 import common_pb2, silver_pb2, silver_pb2_grpc
from services.bronze.ingest import IngestPlan, ingest
from services.bronze.options import CsvOptions

SPEC = yaml.safe_load((ROOT / "examples" / "silver" / "customers.yaml").read_text())
JOB = JobKey("bench", "customers")
MARKERS = ["", "NULL", "N/A", "null"]
EMAIL = r"[^@\s]+@[^@\s]+\.[a-z]+"
# The service's whitespace set as a DuckDB expression (its trim() alone strips spaces only).
DUCKDB_WHITESPACE = " || ".join(f"chr({ord(ch)})" for ch in WHITESPACE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1024)
    parser.add_argument("--memory-mb", type=int, default=Settings().silver_memory_limit_mb)
    parser.add_argument(
        "--service-only", action="store_true", help="skip the baselines (e.g. to see memory)"
    )
    args = parser.parse_args()
    csv = generated_csv("customers", args.size_mb)
    with tempfile.TemporaryDirectory(prefix="silver-bench-") as tmp:
        s3 = EmbeddedS3(Path(tmp) / "s3", "bench", secrets.token_urlsafe(16), "bench")
        with s3:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                s3_endpoint_url=s3.endpoint_url,
                s3_access_key_id=s3.access_key,
                s3_secret_access_key=SecretStr(s3.secret_key),
                s3_bucket=s3.bucket,
                state_dir=Path(tmp) / "state",
                silver_memory_limit_mb=args.memory_mb,
            )
            run(settings, csv, baselines=not args.service_only)


def run(settings: Settings, csv: Path, baselines: bool = True) -> None:
    store = ObjectStore(settings)
    csv_mb = csv.stat().st_size / 2**20
    with csv.open("rb") as handle:
        store.upload(landing_prefix(JOB) + csv.name, handle)
    started = time.monotonic()
    bronze = ingest(
        store, settings, IngestPlan(JOB, "bronze-1", CsvOptions.validated()), Deadline()
    )
    bronze_mb = sum(o.size_bytes for o in bronze.data_objects) / 2**20
    print(
        f"input: {csv_mb:,.0f} MB of CSV -> bronze {bronze.rows_out:,} rows in "
        f"{len(bronze.data_objects)} Parquet objects ({bronze_mb:,.0f} MB) "
        f"in {time.monotonic() - started:.1f} s"
    )
    urls = [s3_url(settings, o.key) for o in bronze.data_objects]
    service = run_service(settings)
    print()
    report("silver service", service["seconds"], service["rows"], csv_mb, bronze.rows_out)
    print_service(settings, service)
    if not baselines:
        return
    rows = {"duckdb": run_duckdb(settings, urls), "polars": run_polars(settings, urls)}
    for name, (seconds, out) in (
        ("duckdb statement", rows["duckdb"]),
        ("polars lazy query", rows["polars"]),
    ):
        report(name, seconds, out, csv_mb, bronze.rows_out)
    fastest = min(("duckdb", "polars"), key=lambda n: rows[n][0])
    ratio = service["seconds"] / rows[fastest][0]
    print(f"\nratio service / fastest baseline ({fastest}): {ratio:.2f}  (aim: <= 1.5)")
    if len({service["rows"], rows["duckdb"][1], rows["polars"][1]}) != 1:
        print("WARNING: the three runs wrote different row counts")


def print_service(settings: Settings, service: dict[str, Any]) -> None:
    print(
        f"{'':18s} peak RSS {service['peak_rss'] / 2**20:,.0f} MB "
        f"(idle {service['idle_rss'] / 2**20:,.0f} MB; silver_memory_limit_mb "
        f"{settings.silver_memory_limit_mb}; {service['objects']} silver objects); "
        f"{service['rejected']:,} rows quarantined, {service['duplicates']:,} duplicates removed"
    )


def report(name: str, seconds: float, rows: int, csv_mb: float, bronze_rows: int) -> None:
    print(
        f"{name:18s} {rows:>12,} rows out  {seconds:7.2f} s  "
        f"{csv_mb / seconds:7.1f} MB/s of CSV  {bronze_rows / seconds / 1e6:6.2f} M bronze rows/s"
    )


def run_service(settings: Settings) -> dict[str, Any]:
    """`flowforge serve silver` in a subprocess; one Refine; its RSS sampled every 50 ms."""
    port = pick_ports()["s3.port"]
    env = {
        **os.environ,
        "FLOWFORGE_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "FLOWFORGE_S3_ACCESS_KEY_ID": settings.s3_access_key_id or "",
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
        "FLOWFORGE_S3_BUCKET": settings.s3_bucket,
        "FLOWFORGE_STATE_DIR": str(settings.state_dir),
        "FLOWFORGE_SILVER_MEMORY_LIMIT_MB": str(settings.silver_memory_limit_mb),
        "FLOWFORGE_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "cli", "serve", "silver", "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
            watched = psutil.Process(process.pid)
            idle = watched.memory_info().rss
            peak = [idle]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.05):
                    peak[0] = max(peak[0], watched.memory_info().rss)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            request = silver_pb2.RefineRequest(
                job=common_pb2.JobRef(workflow_id=JOB.workflow_id, job_id=JOB.job_id),
                run_id="silver-1",
                spec=json_format.ParseDict(SPEC, silver_pb2.SilverSpec()),
            )
            started = time.monotonic()
            result = silver_pb2_grpc.SilverServiceStub(channel).Refine(request, timeout=3600)
            seconds = time.monotonic() - started
            done.set()
            sampler.join()
    finally:
        process.terminate()
        process.wait(timeout=60)
    return {
        "seconds": seconds,
        "rows": result.rows_out,
        "rejected": result.rows_rejected,
        "duplicates": result.duplicates_removed,
        "objects": len(result.data_objects),
        "peak_rss": peak[0],
        "idle_rss": idle,
    }


def run_duckdb(settings: Settings, urls: list[str]) -> tuple[float, int]:
    """The whole refine as one DuckDB statement, reading and writing S3 through httpfs."""
    con = duckdb_on_s3(settings)

    def text(name: str, case: str = "") -> str:
        markers = ", ".join(repr(m) for m in MARKERS)
        trimmed = f"trim({name}, {DUCKDB_WHITESPACE})"
        value = f"CASE WHEN {trimmed} IN ({markers}) THEN NULL ELSE {trimmed} END"
        return f"{case}({value})" if case else value

    listed = "[" + ", ".join(f"'{u}'" for u in urls) + "]"
    statement = f"""
COPY (
  SELECT * EXCLUDE (lifetime_text, signup_text, updated_text, id_text) FROM (
    SELECT TRY_CAST({text("customer_id")} AS BIGINT) AS customer_id,
           {text("customer_id")} AS id_text,
           {text("first_name")} AS first_name, {text("last_name")} AS last_name,
           {text("email", "lower")} AS email, {text("country_code", "upper")} AS country_code,
           coalesce(try_strptime({text("signup_date")}, '%Y-%m-%d'),
                    try_strptime({text("signup_date")}, '%d/%m/%Y'))::DATE AS signup_date,
           {text("signup_date")} AS signup_text,
           TRY_CAST({text("updated_at")} AS TIMESTAMPTZ)::TIMESTAMP AS updated_at,
           {text("updated_at")} AS updated_text,
           TRY_CAST({text("lifetime_value")} AS DECIMAL(12,2)) AS lifetime_value,
           {text("lifetime_value")} AS lifetime_text,
           {text("status", "lower")} AS status,
           _row_hash, _source_key, _source_etag, _row_number, _ingested_at,
           _run_id AS _bronze_run_id
    FROM read_parquet({listed}, union_by_name = true, hive_partitioning = false))
  WHERE customer_id IS NOT NULL
    AND (signup_text IS NULL OR signup_date IS NOT NULL)
    AND (updated_text IS NULL OR updated_at IS NOT NULL)
    AND (lifetime_text IS NULL OR lifetime_value IS NOT NULL)
    AND (email IS NULL OR regexp_full_match(email, '{EMAIL}'))
    AND (lifetime_value IS NULL OR lifetime_value BETWEEN 0 AND 100000)
  QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY updated_at DESC NULLS LAST,
          _ingested_at DESC, _source_key DESC, _row_number DESC) = 1
) TO '{s3_url(settings, "bench/duckdb")}' (FORMAT parquet, COMPRESSION zstd, RETURN_STATS true)"""
    started = time.monotonic()
    written = con.execute(statement).fetchall()
    return time.monotonic() - started, sum(row[1] for row in written)


def duckdb_on_s3(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A connection that reads and writes the bench's S3 with the packaged httpfs build."""
    extension = Path(str(resources.files("duckdb_extension_httpfs"))) / "extensions"
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    con.execute(f"LOAD '{extension / f'v{duckdb.__version__}' / 'httpfs.duckdb_extension'}'")
    # TIMESTAMPTZ -> TIMESTAMP in UTC: a value with an offset is converted, as the service does;
    # TRY_CAST to TIMESTAMP would drop the offset instead.
    con.execute("SET TimeZone = 'UTC'")
    secret = settings.s3_secret_access_key.get_secret_value()  # type: ignore[union-attr]
    host = (settings.s3_endpoint_url or "").split("://", 1)[-1]
    con.execute(
        f"CREATE SECRET (TYPE s3, KEY_ID '{settings.s3_access_key_id}', SECRET '{secret}', "
        f"ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false, REGION '{settings.s3_region}')"
    )
    return con


def first_parsed(text: pl.Expr, attempts: list[Parser]) -> pl.Expr:
    """The first attempt that parses, each tried only on what the earlier ones refused (as
    the service does; a plain coalesce would run every attempt on every value)."""
    value = attempts[0](text)
    for attempt in attempts[1:]:
        value = pl.coalesce(value, attempt(pl.when(value.is_null()).then(text)))
    return value


def run_polars(settings: Settings, urls: list[str]) -> tuple[float, int]:
    """The whole refine as one polars lazy query on the streaming engine."""
    options = polars_storage_options(settings)

    def text(name: str) -> pl.Expr:
        trimmed = pl.col(name).str.strip_chars(WHITESPACE)
        return pl.when(~trimmed.is_in(MARKERS)).then(trimmed)

    signup, updated, lifetime = text("signup_date"), text("updated_at"), text("lifetime_value")
    typed = pl.scan_parquet(urls, storage_options=options, hive_partitioning=False).select(
        customer_id=text("customer_id").cast(pl.Int64, strict=False),
        first_name=text("first_name"),
        last_name=text("last_name"),
        email=text("email").str.to_lowercase(),
        country_code=text("country_code").str.to_uppercase(),
        signup_date=first_parsed(signup, parsers(SilverType("date"), ("%Y-%m-%d", "%d/%m/%Y"))),
        # No formats in the spec: the service's ISO 8601 list, "T" or " ", offsets to UTC.
        updated_at=first_parsed(updated, parsers(SilverType("timestamp"))),
        lifetime_value=lifetime.cast(pl.Decimal(12, 2), strict=False),
        status=text("status").str.to_lowercase(),
        _row_hash=pl.col("_row_hash"),
        _source_key=pl.col("_source_key"),
        _source_etag=pl.col("_source_etag"),
        _row_number=pl.col("_row_number"),
        _ingested_at=pl.col("_ingested_at"),
        _bronze_run_id=pl.col("_run_id"),
        signup_text=signup,
        updated_text=updated,
        lifetime_text=lifetime,
    )
    kept = typed.filter(
        pl.col("customer_id").is_not_null(),
        pl.col("signup_text").is_null() | pl.col("signup_date").is_not_null(),
        pl.col("updated_text").is_null() | pl.col("updated_at").is_not_null(),
        pl.col("lifetime_text").is_null() | pl.col("lifetime_value").is_not_null(),
        pl.col("email").is_null() | pl.col("email").str.contains(f"^(?:{EMAIL})$"),
        pl.col("lifetime_value").is_null() | pl.col("lifetime_value").is_between(0, 100000),
    ).drop("signup_text", "updated_text", "lifetime_text")
    latest = kept.sort(
        ["customer_id", "updated_at", "_ingested_at", "_source_key", "_row_number"],
        nulls_last=False,
    ).unique(subset=["customer_id"], keep="last")
    written: list[int] = []
    started = time.monotonic()
    latest.sink_parquet(
        s3_url(settings, "bench/polars.parquet"),
        storage_options=options,
        compression="zstd",
        sinked_paths_callback=lambda a: written.extend(p.num_rows for p in a.paths),
    )
    return time.monotonic() - started, sum(written)


if __name__ == "__main__":
    main()
