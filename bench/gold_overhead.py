"""What a gold build's own process costs: a small build through the service against the same
models in a DuckDB session of this process.

    python -m bench.gold_overhead [--builds 15]

Commits a small silver table (1,000 rows) to an embedded S3, starts the gold service in
this process and times `--builds` builds of one model plus the built-in profile:

  * paced: a pause after each build, so the next build finds its process started and
    loaded (the usual case: the service starts one ahead);
  * back to back: the next build starts at once, its process still loading;
  * in process: the same models in a GoldSession of this process, as gold ran them
    before builds had their own process (views, lock, COPY to S3, preview; no commit: the
    service's figures include committing the two model tables).

Prints the medians and the overhead of the service over the in-process run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import polars as pl
from deltalake import DeltaTable, write_deltalake

from bench.common import start_s3
from flowforge import tables
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.specs.gold import PROFILE_MODEL
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from flowforge.v1 import common_pb2, gold_pb2, gold_pb2_grpc
from services.gold.engine import GoldSession, Inputs, Source
from services.gold.profile import profile_sql
from services.layers import create_server

JOB = JobKey("bench", "overhead")
MODEL = "SELECT region, count(*) AS orders, sum(amount) AS amount FROM silver GROUP BY ALL"
PAUSE_SECONDS = 2.0


def commit_silver(settings: Settings) -> list[str]:
    frame = pl.DataFrame(
        {
            "order_id": range(1000),
            "region": [["N", "S", "E", "W"][i % 4] for i in range(1000)],
            "amount": [i * 0.25 for i in range(1000)],
        }
    )
    ref, options = TableRef.silver(JOB), tables.storage_options(settings)
    write_deltalake(
        ref.uri(settings),
        frame.to_arrow(),
        mode="overwrite",
        storage_options=options,
        commit_properties=tables.commit_properties("silver-1"),
    )
    table = DeltaTable(ref.uri(settings), storage_options=options)
    return [url.removeprefix(f"s3://{settings.s3_bucket}/") for url in table.file_uris()]


def service_build(stub: gold_pb2_grpc.GoldServiceStub) -> float:
    request = gold_pb2.BuildRequest(
        job=common_pb2.JobRef(workflow_id=JOB.workflow_id, job_id=JOB.job_id),
        spec=gold_pb2.GoldSpec(models=[gold_pb2.Model(name="by_region", sql=MODEL)]),
    )
    started = time.perf_counter()
    stub.Build(request, timeout=120)
    return time.perf_counter() - started


def in_process_build(settings: Settings, keys: list[str], spill: Path) -> float:
    started = time.perf_counter()
    outputs = [
        f"{TableRef.gold_model(JOB, name).prefix}part-{uuid.uuid4()}.parquet"
        for name in ("by_region", PROFILE_MODEL)
    ]
    spill.mkdir(parents=True)
    with GoldSession(settings, Inputs({"silver": Source(keys)}, outputs), spill) as session:
        session.run_model("by_region", MODEL, outputs[0], 20)
        session.run_model(PROFILE_MODEL, profile_sql(session.columns("silver")), outputs[1], 20)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-gold-overhead-") as workdir:
        s3, settings = start_s3(Path(workdir))
        settings = settings.model_copy(update={"state_dir": Path(workdir) / "state"})
        try:
            store = ObjectStore(settings)
            keys = commit_silver(settings)
            server = create_server("gold", settings, "127.0.0.1:0", store)
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = gold_pb2_grpc.GoldServiceStub(channel)
                service_build(stub)  # the first build loads what every later one reuses
                paced, back_to_back = [], []
                for _ in range(args.builds):
                    time.sleep(PAUSE_SECONDS)  # a benchmark's pacing, not a synchronisation
                    paced.append(service_build(stub))
                for _ in range(args.builds):
                    back_to_back.append(service_build(stub))
            server.stop(0)
            spill = Path(workdir) / "spill"
            in_process = [
                in_process_build(settings, keys, spill / str(i)) for i in range(args.builds)
            ]
        finally:
            s3.stop()
    base = statistics.median(in_process)
    print(f"gold build of one model + profile over 1,000 rows, median of {args.builds}:")
    for label, times in (("paced", paced), ("back to back", back_to_back)):
        median = statistics.median(times)
        overhead = 1000 * (median - base)
        print(
            f"  service, {label:<13} {median * 1000:7.0f} ms   overhead {overhead:5.0f} ms"
            f" over in-process (ratio {median / base:.2f})"
        )
    print(f"  in process            {base * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
