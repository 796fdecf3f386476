"""Bronze throughput and memory against the bare engines, same data, same S3, same run.

    python -m bench.bronze [--size-mb 1024]

Ingests a generated CSV through a running `flowforge serve bronze` on the embedded
SeaweedFS, then converts the same CSV to Parquet with DuckDB (COPY ... TO parquet) and
with polars (scan_csv(...).sink_parquet(...)), S3 in and out on the same server. Prints
each throughput, the ratio of the service to the faster baseline (aim: <= 1.5) and the
service's peak RSS (aim: < 1 GB).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import grpc
import polars as pl

from bench.common import ServiceProcess, generated_csv, httpfs_connection, start_s3, timed
from flowforge.storage import ObjectStore, polars_storage_options
from flowforge.v1 import bronze_pb2, bronze_pb2_grpc, common_pb2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1024)
    args = parser.parse_args()
    csv_path = generated_csv("customers", args.size_mb)
    size_mb = csv_path.stat().st_size / 1e6
    with tempfile.TemporaryDirectory(prefix="ff-bench-") as tmp:
        s3, settings = start_s3(Path(tmp))
        service = None
        try:
            store = ObjectStore(settings)
            key = "landing/bench/customers/customers.csv"
            with csv_path.open("rb") as handle:
                store.upload(key, handle)
            url = f"s3://{settings.s3_bucket}/{key}"
            print(f"input: {size_mb:.0f} MB of CSV at {url}")
            service = ServiceProcess("bronze", settings, Path(tmp))

            def ingest() -> common_pb2.LayerResult:
                with grpc.insecure_channel(service.address) as channel:
                    return bronze_pb2_grpc.BronzeServiceStub(channel).Ingest(
                        bronze_pb2.IngestRequest(
                            job=common_pb2.JobRef(workflow_id="bench", job_id="customers"),
                            full_refresh=True,
                        ),
                        timeout=1800,
                    )

            service.reset_peak()
            t_service, result = timed("flowforge bronze service", ingest)
            peak = service.peak_rss

            def duckdb_copy() -> None:
                con = httpfs_connection(settings)
                con.execute(
                    f"COPY (SELECT * FROM read_csv('{url}', all_varchar=true)) "
                    f"TO 's3://{settings.s3_bucket}/baseline/duckdb.parquet' "
                    "(FORMAT parquet, COMPRESSION zstd)"
                )

            def polars_sink() -> None:
                options = polars_storage_options(settings)
                pl.scan_csv(url, storage_options=options, infer_schema=False).sink_parquet(
                    f"s3://{settings.s3_bucket}/baseline/polars.parquet",
                    storage_options=options,
                    compression="zstd",
                )

            t_duckdb, _ = timed("bare DuckDB COPY csv->parquet", duckdb_copy)
            t_polars, _ = timed("bare polars scan_csv->sink_parquet", polars_sink)
        finally:
            if service is not None:
                service.stop()
            s3.stop()
    fastest = min(t_duckdb, t_polars)
    print()
    print(f"rows: {result.rows_out} bronze + {result.rows_rejected} rejected = {result.rows_in}")
    for label, seconds in (("service", t_service), ("duckdb", t_duckdb), ("polars", t_polars)):
        print(f"throughput {label:<8} {size_mb / seconds:8.1f} MB/s")
    print(f"ratio service / fastest bare engine: {t_service / fastest:.2f}  (aim <= 1.5)")
    print(f"service peak RSS: {peak / 2**20:.0f} MiB  (aim < 1024 MiB)")


if __name__ == "__main__":
    main()
