"""The version of the bronze table a refine reads: its rows, size and columns."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from flowforge import tables
from flowforge.errors import FailedPrecondition
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef


@dataclass(frozen=True)
class BronzeInput:
    table: DeltaTable  # loaded at the version read
    version: int
    run_id: str  # the run that committed this version
    rows: int
    size_bytes: int  # of its data files
    columns: list[str]

    def scan(self, settings: Settings) -> pl.LazyFrame:
        """The rows of exactly this version; a column a file lacks is null there."""
        return tables.scan(settings, self.table)


def read_bronze(store: ObjectStore, settings: Settings, job: JobKey) -> BronzeInput:
    """The bronze table's current version, described from its log."""
    ref = TableRef.bronze(job)
    with tables.delta_errors("reading bronze", ref):
        table = tables.load(settings, ref)
        if table is None:
            raise FailedPrecondition(
                f"bronze has not been committed for job {job} "
                f"(no Delta table at s3://{settings.s3_bucket}/{ref}): run bronze first"
            )
        files = pa.table(table.get_add_actions(flatten=True))
        latest = tables.commit_at(store, ref, table.version())
    return BronzeInput(
        table=table,
        version=table.version(),
        run_id=latest.run_id,
        rows=sum(n or 0 for n in files.column("num_records").to_pylist()) if files.num_rows else 0,
        size_bytes=sum(files.column("size_bytes").to_pylist()) if files.num_rows else 0,
        columns=[field.name for field in table.schema().fields],
    )
