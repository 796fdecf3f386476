"""One bronze run's commits: its rejects to the rejects table, then its rows to the bronze table.

The rejects go first so that the bronze commit's report can name their version. Each commit
is made without retries on top of the versions the run read, so a run that decided what to
skip from version N commits N+1 or nothing (Conflict, ABORTED). A run's files are deleted
only when they are known not to be committed; a commit whose outcome is unknown (the store
failed mid-request) leaves them for a vacuum rather than risk deleting committed data.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from deltalake import CommitProperties, DeltaTable, Field
from deltalake.schema import PrimitiveType
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from flowforge import tables
from flowforge.bronze_columns import AUDIT_TYPES, REJECT_TYPES, bronze_schema
from flowforge.errors import Conflict
from flowforge.reports import Column, LayerReport
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.table_files import DataFile, add_action, delta_schema
from flowforge.tables import TableRef
from services.bronze.holdings import Held, removals

SCHEMA_ATTEMPTS = 5
ADD_COLUMN = "ADD COLUMN"  # delta-rs's operation name for a schema-only commit


@dataclass
class BronzeTables:
    """Bronze's two tables, at the versions this run read."""

    rows_ref: TableRef
    rejects_ref: TableRef
    rows: DeltaTable | None
    rejects: DeltaTable | None
    held_rows: dict[str, Held] = field(default_factory=dict)
    held_rejects: dict[str, Held] = field(default_factory=dict)


@dataclass
class RunFiles:
    """What one run wrote and read, ready to commit."""

    run_id: str
    rows: list[DataFile]
    rejects: list[DataFile]
    replaced: set[str]  # landing keys read again (their old rows go)
    columns: list[str]  # source columns of the files read
    inputs: dict[str, Any]
    full_refresh: bool = False


def publish(
    store: ObjectStore, settings: Settings, t: BronzeTables, run: RunFiles, report: LayerReport
) -> LayerReport:
    """Commits the run and returns its report, or the report of the same run id when a
    racing attempt of it committed first."""
    try:
        removed_rows, removed_rejects = [], []
        if not run.full_refresh:
            removed_rows = removals(t.held_rows, run.replaced, t.rows_ref)
            removed_rejects = removals(t.held_rejects, run.replaced, t.rejects_ref)
    except BaseException:
        discard(store, run.rows + run.rejects)
        raise
    report.table, report.side_table = str(t.rows_ref), str(t.rejects_ref)
    report.side_version = commit_rejects(store, settings, t, run, removed_rejects)
    try:
        rows, columns = rows_schema(settings, t, run)
    except BaseException as exc:
        discard(store, run.rows)
        if not isinstance(exc, Conflict) or (won := winner(settings, t, run)) is None:
            raise
        return won
    version = next_version(rows)
    kept = sum(h.rows for key, h in t.held_rows.items() if key not in run.replaced)
    report.table_version = version
    report.manifest_key = f"{t.rows_ref}/_delta_log/{version:020d}.json"
    report.total_rows = (0 if run.full_refresh else kept) + sum(f.rows for f in run.rows)
    report.columns = [Column(name=n, type=str(d)) for n, d in columns.items()]
    properties = tables.commit_properties(run.run_id, report, run.inputs, retries=0)
    try:
        commit(
            settings, t.rows_ref, rows, run.rows, removed_rows, columns, properties,
            overwrite=run.full_refresh, configuration=tables.CHANGE_DATA_FEED,
        )  # fmt: skip
    except Conflict:
        discard(store, run.rows)
        if (won := winner(settings, t, run)) is None:
            raise
        return won
    return report


def rows_schema(
    settings: Settings, t: BronzeTables, run: RunFiles
) -> tuple[DeltaTable | None, dict[str, pl.DataType]]:
    """The bronze table to commit on and its columns after the commit: the run's columns
    when it creates or overwrites the table, else the table's plus the new ones."""
    rows = t.rows
    if rows is None or run.full_refresh:
        return rows, bronze_schema(run.columns)
    for _ in range(SCHEMA_ATTEMPTS):
        names = [f.name for f in rows.schema().fields]
        added = [c for c in run.columns if c not in names]
        if not added:
            return rows, {n: AUDIT_TYPES.get(n, pl.String()) for n in names}
        rows = add_columns(settings, t.rows_ref, rows, added, run.run_id)
    raise Conflict(f"{t.rows_ref}'s columns kept changing while this run added its own")


def winner(settings: Settings, t: BronzeTables, run: RunFiles) -> LayerReport | None:
    """The report of a racing attempt of the same run id that committed first."""
    with tables.delta_errors("reading the winning commit", t.rows_ref):
        found = tables.find_commit(tables.load(settings, t.rows_ref), run.run_id)
    if found is None or found.report is None:
        return None
    found.report.reused = True
    return found.report


def commit_rejects(
    store: ObjectStore,
    settings: Settings,
    t: BronzeTables,
    run: RunFiles,
    removed: list[RemoveAction],
) -> int:
    """Commits the run's rejects; returns the version holding them (a racing attempt's of
    the same run id, when it committed first)."""
    version = next_version(t.rejects)
    properties = tables.commit_properties(run.run_id, None, run.inputs, retries=0)
    try:
        commit(
            settings, t.rejects_ref, t.rejects, run.rejects, removed, REJECT_TYPES, properties,
            overwrite=run.full_refresh,
        )  # fmt: skip
    except Conflict:
        discard(store, run.rejects)
        with tables.delta_errors("reading the winning commit", t.rejects_ref):
            winner = tables.find_commit(tables.load(settings, t.rejects_ref), run.run_id)
        if winner is None:
            discard(store, run.rows)
            raise
        return winner.version
    except BaseException:
        discard(store, run.rows)  # never committed; the rejects' fate is unknown
        raise
    return version


def commit(
    settings: Settings,
    ref: TableRef,
    table: DeltaTable | None,
    files: list[DataFile],
    removed: list[RemoveAction],
    schema: dict[str, pl.DataType],
    properties: CommitProperties,
    overwrite: bool = False,
    configuration: dict[str, str] | None = None,
) -> None:
    """Commits the files and removals as the version after `table` (or version 0, creating
    the table): with no retries, any commit made since `table` was read fails this one."""
    adds = [add_action(ref, f) for f in files]
    with tables.delta_errors(f"committing {ref}", ref):
        if table is None:
            create_table_with_add_actions(
                ref.uri(settings),
                delta_schema(schema),
                adds,
                mode="error",
                configuration=configuration,
                storage_options=tables.storage_options(settings),
                commit_properties=properties,
            )
        elif overwrite:
            actions: list[AddAction | RemoveAction] = [*adds]
            table.create_write_transaction(
                actions, "overwrite", delta_schema(schema), commit_properties=properties
            )
        else:
            table.create_write_transaction(
                [*adds, *removed], "append", table.schema(), commit_properties=properties
            )


def next_version(table: DeltaTable | None) -> int:
    return 0 if table is None else table.version() + 1


def add_columns(
    settings: Settings, ref: TableRef, table: DeltaTable, names: list[str], run_id: str
) -> DeltaTable:
    """Adds source columns in a schema-only commit of its own (delta-rs commits files with
    the table's schema as it is); returns the table at that version. A racing run adding
    columns first does not change which rows are committed, so its commit is built on."""
    read = table.version()
    properties = CommitProperties(
        custom_metadata={"flowforge.added_columns": names, "flowforge.added_by": run_id},
        max_commit_retries=0,
    )
    try:
        with tables.delta_errors(f"adding columns to {ref}", ref):
            table.alter.add_columns(
                [Field(name, PrimitiveType("string"), nullable=True) for name in names],
                commit_properties=properties,
            )
    except Conflict:
        with tables.delta_errors(f"reading {ref} after a racing commit", ref):
            latest = tables.load(settings, ref)
            if latest is None or not only_columns_added(latest, read):
                raise
        return latest
    found = tables.load(settings, ref, read + 1)
    if found is None:  # pragma: no cover (the commit above made it)
        raise Conflict(f"{ref} changed while adding columns")
    return found


def only_columns_added(table: DeltaTable, since: int) -> bool:
    """Whether every commit after version `since` only added columns."""
    commits = tables.history(table, table.version() - since)
    return all(c.operation == ADD_COLUMN and c.version > since for c in commits)


def discard(store: ObjectStore, files: list[DataFile]) -> None:
    """Deletes files this run wrote and did not commit (and nothing else)."""
    with contextlib.suppress(Exception):  # the caller's error is the one that counts
        store.delete_keys(f.key for f in files)
