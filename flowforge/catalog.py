"""What FlowForge's tables hold: every table in the bucket, a table's commits, and any
version's schema and first rows (`flowforge tables`, the API's tables and previews)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable
from deltalake import exceptions as delta_exceptions

from flowforge import tables
from flowforge.errors import InvalidArgument, NotFound, Unavailable
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import Commit, Files, TableRef

# Where the side tables of a layer live (bronze/{w}/_rejects/{j}, silver/{w}/_quarantine/{j}).
SIDE_FOLDERS = {"bronze": "_rejects", "silver": "_quarantine"}
LOG_FOLDER = "_delta_log"


@dataclass(frozen=True)
class TableSummary:
    """A table's latest version: how big it is, and the commit and run that made it."""

    ref: TableRef
    version: int
    data_version: int  # the latest version that changed rows (later ones: maintenance)
    files: Files
    last_commit: Commit
    run_id: str  # the run of the latest commit a layer made (maintenance carries none)


@dataclass(frozen=True)
class TableView:
    """One version of a table: its schema, size and first rows."""

    ref: TableRef
    version: int
    latest_version: int
    data_version: int
    commit: Commit | None
    columns: list[tuple[str, str]]
    files: Files
    head: pl.DataFrame

    @property
    def current(self) -> bool:
        """Whether this version still holds the table's current rows."""
        return self.version >= self.data_version


def find_tables(store: ObjectStore) -> list[TableRef]:
    """Every table FlowForge writes that exists in the bucket (a folder of one of the
    table shapes holding a `_delta_log/`), by path. Nothing else is ever listed as one."""
    candidates = [f"dimensions/{n}" for n in _children(store, "dimensions/")]
    for layer in ("bronze", "silver"):
        for workflow in _children(store, f"{layer}/"):
            for name in _children(store, f"{layer}/{workflow}/"):
                if name == SIDE_FOLDERS[layer]:
                    side = f"{layer}/{workflow}/{name}/"
                    candidates += [f"{side}{job}" for job in _children(store, side)]
                else:
                    candidates.append(f"{layer}/{workflow}/{name}")
    for workflow in _children(store, "gold/"):
        for job in _children(store, f"gold/{workflow}/"):
            folder = f"gold/{workflow}/{job}/"
            candidates += [f"{folder}{model}" for model in _children(store, folder)]
    refs = []
    for path in sorted(candidates):
        try:
            refs.append(TableRef.parse(path))
        except InvalidArgument:
            continue  # not a table FlowForge writes (a legacy run= folder, another tool's)
    with ThreadPoolExecutor(max_workers=8) as pool:
        logged = list(pool.map(lambda r: LOG_FOLDER in _children(store, r.prefix), refs))
    return [ref for ref, has_log in zip(refs, logged, strict=True) if has_log]


def _children(store: ObjectStore, prefix: str) -> list[str]:
    return [p[len(prefix) :].rstrip("/") for p in store.list_prefixes(prefix)]


def list_tables(settings: Settings, store: ObjectStore) -> list[TableSummary]:
    """Every table with its latest version, by path."""
    refs = find_tables(store)
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda r: summary(settings, r), refs))
    return [s for s in found if s is not None]


def summary(settings: Settings, ref: TableRef) -> TableSummary | None:
    table = tables.load(settings, ref)
    if table is None:
        return None
    with tables.delta_errors(f"reading the log of {ref}", ref):
        recent = tables.history(table, tables.HISTORY_SCAN)
        files = Files.of(table)
    data = next((c for c in recent if c.operation not in tables.MAINTENANCE_OPERATIONS), None)
    return TableSummary(
        ref=ref,
        version=table.version(),
        data_version=data.version if data else table.version(),
        files=files,
        last_commit=recent[0],
        run_id=next((c.run_id for c in recent if c.run_id), ""),
    )


def history(settings: Settings, ref: TableRef, limit: int) -> list[Commit]:
    """The table's commits, newest first, at most `limit`."""
    table = require(settings, ref)
    with tables.delta_errors(f"reading the log of {ref}", ref):
        return tables.history(table, limit)


def require(settings: Settings, ref: TableRef) -> DeltaTable:
    table = tables.load(settings, ref)
    if table is None:
        raise NotFound(f"table {ref} does not exist (no Delta table at {ref.uri(settings)})")
    return table


def read_version(settings: Settings, ref: TableRef, version: int | None, limit: int) -> TableView:
    """Version `version` of the table (None: the latest) with its first `limit` rows."""
    latest = require(settings, ref)
    newest = latest.version()
    if version is None:
        version = newest
    if not 0 <= version <= newest:
        raise NotFound(f"table {ref} has no version {version} (its versions are 0 to {newest})")
    with tables.delta_errors(f"reading the log of {ref}", ref):
        data_version = tables.data_version(latest)
        commits = latest.history(newest - version + 1)
    commit = next((Commit.of(c) for c in commits if int(c["version"]) == version), None)
    table = latest if version == newest else _at(settings, ref, version)
    schema = pl.DataFrame(pa.schema(table.schema().to_arrow()).empty_table()).schema
    return TableView(
        ref=ref,
        version=version,
        latest_version=newest,
        data_version=data_version,
        commit=commit,
        columns=[(name, str(dtype)) for name, dtype in schema.items()],
        files=Files.of(table),
        head=_head(settings, ref, version, limit),
    )


def _at(settings: Settings, ref: TableRef, version: int) -> DeltaTable:
    """An older version; its log may have been cleaned up (delta.logRetentionDuration),
    which delta-rs reports as no table at all on some stores and as an error on others."""
    try:
        table = tables.load(settings, ref, version)
    except delta_exceptions.DeltaError as exc:
        table, detail = None, f" ({tables.first_line(exc)})"
    else:
        detail = ""
    if table is None:
        raise NotFound(f"version {version} of table {ref} is no longer in its log{detail}")
    return table


def _head(settings: Settings, ref: TableRef, version: int, limit: int) -> pl.DataFrame:
    try:
        return (
            pl.scan_delta(
                ref.uri(settings), version=version, storage_options=tables.storage_options(settings)
            )
            .head(limit)
            .collect()
        )
    except FileNotFoundError:
        raise NotFound(removed(ref, version)) from None
    except (OSError, pl.exceptions.PolarsError, delta_exceptions.DeltaError) as exc:
        if "not found" in str(exc).lower():
            raise NotFound(removed(ref, version)) from None
        raise Unavailable(f"could not read version {version} of {ref}: {exc}") from None


def removed(ref: TableRef, version: int) -> str:
    return (
        f"the files of version {version} of table {ref} were removed by `flowforge maintain` "
        "(no execution recorded that version and it was older than "
        "FLOWFORGE_TABLES_RETENTION_DAYS)"
    )


def gold_tables(store: ObjectStore, workflow_id: str, job_id: str) -> list[TableRef]:
    """The model tables of a job's gold (gold/{w}/{j}/{model}), by model name."""
    folder = f"gold/{workflow_id}/{job_id}/"
    refs = []
    for name in _children(store, folder):
        try:
            refs.append(TableRef.parse(f"{folder}{name}"))
        except InvalidArgument:
            continue
    return [r for r in refs if LOG_FOLDER in _children(store, r.prefix)]


# Integer types whose values JavaScript's numbers (exact to 2^53) cannot all hold: a
# browser would read `_row_hash` 9007199254740993 as ...992. Sent as text, whatever the
# values of one preview, so a column's JSON type depends on its type alone.
WIDE_INTEGERS = (pl.Int64, pl.UInt64, pl.Int128, pl.UInt128)


def json_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON values: decimals, dates and times and 64-bit integers as text, binary
    as hex."""
    columns = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if dtype == pl.Binary:
            column = column.bin.encode("hex")
        elif dtype.is_decimal() or dtype.is_temporal() or dtype in (pl.Object, *WIDE_INTEGERS):
            column = column.cast(pl.String)
        columns.append(column)
    return frame.select(columns).to_dicts() if columns else []
