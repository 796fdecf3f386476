"""Writes bronze's Delta table the way the bronze service does (DELTA_DESIGN.md), for tests.

A stand-in until bronze commits its Delta table itself: every source column as text, the
audit columns with `_row_hash` as Int64, the change data feed on, one commit per call
carrying the run id, and a re-uploaded file's rows replaced by an overwrite with a
predicate on `_source_key` (the change data feed then holds a delete and an insert).
Records whose field count differs from the header's are left out, as bronze rejects them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl
from deltalake import write_deltalake

from flowforge import tables
from flowforge.layout import JobKey, landing_prefix
from flowforge.settings import Settings
from services.bronze.transform import Audit, to_bronze


@dataclass(frozen=True)
class BronzeCommit:
    version: int
    rows: int
    rejected: int
    frame: pl.DataFrame  # the rows committed, as the table holds them


def write_bronze(
    settings: Settings,
    job: JobKey,
    data: bytes,
    run_id: str,
    source: str = "data.csv",
    replace: bool = False,
    delimiter: str = ",",
) -> BronzeCommit:
    """Commits one landing file's rows; `replace`: the file was re-uploaded."""
    text = io.StringIO(data.decode("utf-8"))
    header, *records = list(csv.reader(text, delimiter=delimiter))
    kept = [(n, r) for n, r in enumerate(records, start=1) if len(r) == len(header)]
    text = pl.DataFrame(
        [[r[i] for _, r in kept] for i in range(len(header))],
        schema={name: pl.String for name in header},
        orient="col",
    )
    key = landing_prefix(job) + source
    audit = Audit(datetime.now(UTC), key, f"etag-{run_id}", run_id, job.workflow_id, job.job_id)
    numbers = np.array([n for n, _ in kept], dtype=np.int64)
    frame = to_bronze(text, numbers, audit, ()).with_columns(
        pl.col("_row_hash").reinterpret(signed=True)
    )
    ref = tables.TableRef.bronze(job)
    write_deltalake(
        ref.uri(settings),
        frame.to_arrow(),
        mode="overwrite" if replace else "append",
        predicate=f"_source_key = '{key.replace(chr(39), chr(39) * 2)}'" if replace else None,
        schema_mode="merge",
        configuration=tables.CHANGE_DATA_FEED,
        storage_options=tables.storage_options(settings),
        commit_properties=tables.commit_properties(run_id, inputs={"landing": [{"key": key}]}),
    )
    version = tables.require(settings, ref, "bronze").version()
    return BronzeCommit(version, len(kept), len(records) - len(kept), frame)
