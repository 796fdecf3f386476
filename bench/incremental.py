"""Incremental silver against a full rebuild, measured in the same run.

    python -m bench.incremental                  # ~1 GB of customers CSV, then a 1 % append
    python -m bench.incremental --size-mb 50     # a quick run while developing

Starts an embedded S3, commits the generated customers CSV to bronze's Delta table (one
commit, as bronze would: every column as text, the audit columns, the change data feed
on; records whose field count is wrong are left out, as bronze rejects them), refines it
with examples/silver/customers.yaml, then commits the next 1 % of the generator's rows
(new customers, some of them twice; with --update, existing customers drawn at random)
as a second bronze commit and times two silver runs
over it: the incremental one (bronze's changes merged into silver) and a full rebuild
(`full_refresh`) of the same bronze version. Prints both and their ratio (aim: <= 0.15).
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import yaml
from deltalake import write_deltalake
from google.protobuf import json_format

from bench.common import ROOT, generated_csv, start_s3
from flowforge import tables
from flowforge.layout import JobKey, landing_prefix
from flowforge.reports import LayerReport
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.storage import ObjectStore, prepare_store
from flowforge.v1 import common_pb2, silver_pb2
from services.bronze.transform import Audit, to_bronze
from services.silver.refine import refine
from services.silver.servicer import plan_from_proto

SPEC = yaml.safe_load((ROOT / "examples" / "silver" / "customers.yaml").read_text())
JOB = JobKey("bench", "customers")
APPEND = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1024)
    parser.add_argument(
        "--update", action="store_true", help="append rows of existing customers (updates)"
    )
    args = parser.parse_args()
    # Characters, not bytes, count towards the size: the file holds more than 1 % extra.
    whole = generated_csv("customers", args.size_mb * (1 + APPEND))
    with tempfile.TemporaryDirectory(prefix="incremental-bench-") as tmp:
        first, append = split(whole, Path(tmp), args.size_mb, args.update)
        s3, settings = start_s3(Path(tmp))
        try:
            settings = settings.model_copy(update={"state_dir": Path(tmp) / "state"})
            run(prepare_store(settings), settings, first, append)
        finally:
            s3.stop()


def split(whole: Path, folder: Path, size_mb: float, update: bool) -> tuple[Path, Path]:
    """The generator's first ~size_mb (the job) and the next 1 % of its rows (the append),
    both with the header. The generator writes customers in id order, so the append holds
    new customers; with `update`, each appended row takes an existing customer's id
    instead (drawn at random: updates spread over the whole table)."""
    first, append = folder / "first.csv", folder / "append.csv"
    limit = int(size_mb * 2**20)
    rng = random.Random(7)
    with whole.open("rb") as source, first.open("wb") as head, append.open("wb") as tail:
        header = source.readline()
        head.write(header)
        tail.write(header)
        written, rows = len(header), 0
        for line in source:
            head.write(line)
            written += len(line)
            rows += 1
            if written >= limit:
                break
        for line, _ in zip(source, range(math.ceil(rows * APPEND)), strict=False):
            if update:  # the id is the first field, digits only
                line = b"%d%s" % (rng.randint(1, rows), line[line.index(b",") :])
            tail.write(line)
    return first, append


def commit_bronze(settings: Settings, csv: Path, run_id: str, rows_before: int) -> int:
    """One bronze commit of a CSV's rows, streamed in batches; returns the rows committed."""
    key = landing_prefix(JOB) + csv.name
    audit = Audit(datetime.now(UTC), key, f"etag-{run_id}", run_id, JOB.workflow_id, JOB.job_id)
    with csv.open("rb") as handle:
        names = handle.readline().decode().strip().split(",")
    reader = pacsv.open_csv(
        csv,
        read_options=pacsv.ReadOptions(block_size=64 << 20),
        parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False
        ),
    )
    counted = [rows_before]

    def bronze_batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            text = pl.from_arrow(batch)
            assert isinstance(text, pl.DataFrame)
            numbers = np.arange(counted[0] + 1, counted[0] + 1 + text.height, dtype=np.int64)
            counted[0] += text.height
            frame = to_bronze(text, numbers, audit, ()).with_columns(
                pl.col("_row_hash").reinterpret(signed=True)
            )
            yield from frame.to_arrow().to_batches()

    empty = to_bronze(
        pl.DataFrame(schema={n: pl.String for n in names}), np.array([], np.int64), audit, ()
    ).with_columns(pl.col("_row_hash").reinterpret(signed=True))
    write_deltalake(
        tables.TableRef.bronze(JOB).uri(settings),
        pa.RecordBatchReader.from_batches(empty.to_arrow().schema, bronze_batches()),
        mode="append",
        configuration=tables.CHANGE_DATA_FEED,
        storage_options=tables.storage_options(settings),
        commit_properties=tables.commit_properties(run_id),
    )
    return counted[0] - rows_before


def silver_run(
    store: ObjectStore, settings: Settings, run_id: str, full_refresh: bool = False
) -> tuple[float, LayerReport]:
    request = silver_pb2.RefineRequest(
        job=common_pb2.JobRef(workflow_id=JOB.workflow_id, job_id=JOB.job_id),
        run_id=run_id,
        spec=json_format.ParseDict(SPEC, silver_pb2.SilverSpec()),
        full_refresh=full_refresh,
    )
    started = time.perf_counter()
    result = refine(store, settings, plan_from_proto(request), Deadline())
    return time.perf_counter() - started, result


def run(store: ObjectStore, settings: Settings, first: Path, append: Path) -> None:
    started = time.perf_counter()
    rows = commit_bronze(settings, first, "bronze-1", 0)
    print(
        f"bronze: {first.stat().st_size / 2**20:,.0f} MB of CSV, {rows:,} rows, "
        f"in {time.perf_counter() - started:.1f} s"
    )
    seconds, initial = silver_run(store, settings, "silver-1")
    print(f"silver, first run ({initial.refresh}): {initial.rows_out:,} rows in {seconds:.1f} s")
    added = commit_bronze(settings, append, "bronze-2", rows)
    print(f"bronze: appended {added:,} rows ({added / rows:.1%}) as a second commit")
    incremental_seconds, incremental = silver_run(store, settings, "silver-2")
    full_seconds, full = silver_run(store, settings, "silver-3", full_refresh=True)
    for name, seconds, result in (
        ("incremental", incremental_seconds, incremental),
        ("full rebuild", full_seconds, full),
    ):
        print(
            f"  {name:<13} ({result.refresh:<11}) {seconds:7.2f} s  {result.rows_in:>11,} rows "
            f"read  {result.rows_out:>11,} kept  {result.total_rows:>11,} in silver"
        )
    if incremental.total_rows != full.total_rows:
        print("WARNING: the incremental and the full run left different row counts")
    print(f"\nratio incremental / full: {incremental_seconds / full_seconds:.3f}  (aim: <= 0.15)")


if __name__ == "__main__":
    main()
