"""A gold build's inputs, resolved outside the sandbox: each table at one version, as files.

The service loads each input table (silver, a dimension) with delta-rs at its latest
version, refuses one whose reader features read_parquet cannot honour (tables.version_files)
and hands the build's process exactly that version's data files. The process never reads a
Delta log itself: DuckDB's delta_scan would read any table's log whatever allowed_paths says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from flowforge import tables
from flowforge.errors import FailedPrecondition
from flowforge.reports import InputVersion
from flowforge.settings import Settings
from flowforge.tables import TableRef
from services.gold.engine import Source

# How far back the run that committed a version's data is looked for (maintenance
# commits such as OPTIMIZE carry no run id).
RUN_LOOKBACK = 50


@dataclass(frozen=True)
class TableInput:
    """One input table at the version read."""

    ref: TableRef
    version: int
    run_id: str  # the run (execution) that committed the data of that version
    keys: list[str]  # the object keys of that version's data files
    columns: list[tuple[str, str]]  # (name, DuckDB type) when it has no files
    rows: int | None  # from the log's statistics; None when a file has none
    job_id: str = ""
    dimension: str = ""

    def source(self) -> Source:
        return Source(self.keys, self.columns)

    def lineage(self) -> InputVersion:
        return InputVersion(
            table=self.ref.path,
            version=self.version,
            run_id=self.run_id,
            job_id=self.job_id,
            dimension=self.dimension,
        )

    def recorded(self) -> dict[str, Any]:
        """What a gold commit records about it (flowforge.inputs)."""
        return {"table": self.ref.path, "version": self.version, "run_id": self.run_id}


def resolve(
    settings: Settings, ref: TableRef, what: str, *, job_id: str = "", dimension: str = ""
) -> TableInput:
    """The table's latest version; FailedPrecondition naming `what` when there is none."""
    table = tables.require(settings, ref, what)
    with tables.delta_errors(f"reading {what}", ref):
        urls = tables.version_files(table, ref)
        return TableInput(
            ref=ref,
            version=table.version(),
            run_id=data_run_id(settings, table),
            keys=[object_key(settings, ref, url, what) for url in urls],
            columns=[] if urls else duckdb_columns(table),
            rows=row_count(table),
            job_id=job_id,
            dimension=dimension,
        )


def object_key(settings: Settings, ref: TableRef, url: str, what: str) -> str:
    """The key of a data file, which must lie inside the table's own folder: a log naming
    another table's file (an absolute path in an add action) is refused, not followed."""
    bucket = f"s3://{settings.s3_bucket}/"
    key = url.removeprefix(bucket)
    if not url.startswith(bucket) or not key.startswith(ref.prefix) or "/../" in f"/{key}/":
        raise FailedPrecondition(
            f"{what}: the table's log names the file {url!r}, outside s3://"
            f"{settings.s3_bucket}/{ref.prefix}: it is not read"
        )
    return key


def data_run_id(settings: Settings, table: DeltaTable) -> str:
    """The run id of the newest commit that carries one (maintenance commits do not)."""
    for commit in tables.commits(settings, table, RUN_LOOKBACK):
        if commit.run_id:
            return commit.run_id
    return ""


def row_count(table: DeltaTable) -> int | None:
    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return 0
    if "num_records" not in actions.column_names:
        return None
    counts = actions.column("num_records").to_pylist()
    return None if any(c is None for c in counts) else sum(counts)


def duckdb_columns(table: DeltaTable) -> list[tuple[str, str]]:
    """The table's columns as DuckDB types (for the empty view of a version without files)."""
    empty = pa.schema(table.schema().to_arrow()).empty_table()
    with duckdb.connect(":memory:") as con:
        relation = con.from_arrow(empty)
        return [(n, str(t)) for n, t in zip(relation.columns, relation.types, strict=True)]
