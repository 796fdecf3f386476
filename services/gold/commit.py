"""Committing a gold build: each model's table overwritten with its new file, after all built.

Every model has a Delta table of its own; a build's process wrote one `part-{uuid}.parquet`
per model into it (a name no other attempt uses). Once every model succeeded, each table
is opened (created when new) and its next version is known; the report, with every
model's version, goes into each commit (tables.commit_properties) and the tables are
committed in model order with `create_write_transaction(mode="overwrite")`, never retried
on top of another writer's commit (retries=0): a racing commit makes this one fail.

Two runs racing: the first table decides, the loser gets ABORTED and removes its own
files. Two attempts of the same run racing: the loser waits for the winner's commits
and replays them. A repeated run id whose commits are all there replays the report,
previews read again from the committed versions.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, TableFeatures
from deltalake import exceptions as delta_exceptions

from flowforge import tables
from flowforge.duckdb_s3 import connect, duckdb_url, read_parquet_sql, scrub
from flowforge.errors import Conflict, FlowForgeError
from flowforge.reports import LayerReport
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from services.gold.engine import bounded_rows
from services.gold.model_files import ModelFile, read_model_file

_WAIT_FIRST, _WAIT_MOST = 0.05, 1.0


@dataclass(frozen=True)
class Staged:
    """A model's file, read back, ready to become its table's next version."""

    name: str
    ref: TableRef
    file: ModelFile
    inputs: dict[str, Any]  # what its commit records as flowforge.inputs


def stage(store: ObjectStore, name: str, ref: TableRef, key: str, inputs: dict[str, Any]) -> Staged:
    return Staged(name, ref, read_model_file(store, key), inputs)


def commit_key(ref: TableRef, version: int) -> str:
    return f"{ref}/_delta_log/{version:020d}.json"


def open_tables(settings: Settings, staged: list[Staged]) -> list[DeltaTable]:
    """Each model's table as it is now: created (empty) where new, and able to hold the
    new file's types. The report's versions are these tables' versions plus one."""
    return [open_table(settings, s.ref, s.file.schema, f"model {s.name!r}") for s in staged]


def open_table(settings: Settings, ref: TableRef, schema: pa.Schema, what: str) -> DeltaTable:
    table = tables.load(settings, ref)
    if table is None:
        with tables.delta_errors(f"creating the table of {what}", ref):
            try:
                DeltaTable.create(
                    ref.uri(settings), schema, storage_options=tables.storage_options(settings)
                )
            except delta_exceptions.DeltaError:
                if tables.load(settings, ref) is None:
                    raise
                # else a racing attempt created it: this one goes on with that table
        table = tables.require(settings, ref, what)
    writer = set(table.protocol().writer_features or ())
    if holds_local_timestamps(schema) and "timestampNtz" not in writer:
        # A table created without TIMESTAMP (no time zone) columns cannot take one until
        # it declares the feature; a commit of its own, before this run's.
        with tables.delta_errors(f"enabling TIMESTAMP columns in the table of {what}", ref):
            table.alter.add_feature(
                TableFeatures.TimestampWithoutTimezone, allow_protocol_versions_increase=True
            )
        table = tables.require(settings, ref, what)
    return table


def holds_local_timestamps(schema: pa.Schema) -> bool:
    def local(type_: pa.DataType) -> bool:
        if pa.types.is_timestamp(type_):
            return type_.tz is None
        return any(local(type_.field(i).type) for i in range(type_.num_fields))

    return any(local(field.type) for field in schema)


@dataclass(frozen=True)
class Part:
    """A model's file as the build planned it: its table, its key and its commit's inputs."""

    name: str
    ref: TableRef
    key: str
    inputs: dict[str, Any]


def new_part(name: str, ref: TableRef, inputs: dict[str, Any]) -> Part:
    # A name of this attempt's own: two attempts never write, or delete, the same file.
    return Part(name, ref, f"{ref.prefix}part-{uuid.uuid4()}.parquet", inputs)


def commit_build(
    settings: Settings,
    store: ObjectStore,
    run_id: str,
    parts: list[Part],
    make_report: Callable[[list[Staged], list[int]], LayerReport],
    deadline: Deadline,
    preview_rows: int,
) -> LayerReport:
    """Commits the built parts (all written) and returns the report; on failure removes
    this attempt's files that no table version holds. `make_report(staged, versions)`
    builds the report once each table's next version is known."""
    committed: set[str] = set()
    current: Part | None = None
    try:
        staged = [stage(store, p.name, p.ref, p.key, p.inputs) for p in parts]
        opened = open_tables(settings, staged)
        report = make_report(staged, [table.version() + 1 for table in opened])
        for part, model, table in zip(parts, staged, opened, strict=True):
            current = part
            properties = tables.commit_properties(run_id, report, part.inputs, retries=0)
            with tables.delta_errors(f"committing model {part.name!r}", part.ref):
                table.create_write_transaction(
                    [model.file.add_action(part.ref.prefix)],
                    mode="overwrite",
                    schema=model.file.schema,
                    commit_properties=properties,
                )
            committed.add(part.key)
        return report
    except Conflict:
        # A commit that lost wrote nothing: every file not committed goes.
        discard(store, [p.key for p in parts if p.key not in committed])
        lost = current.ref if current is not None else parts[0].ref
        if tables.find_commit(tables.load(settings, lost), run_id, settings) is None:
            raise
        # Another attempt of this very run got there first: its answer is this one's.
        refs = [p.ref for p in parts]
        return replay(settings, wait_for_run(settings, refs, run_id, deadline), preview_rows)
    except BaseException:
        unsure = current.key if current is not None and current.key not in committed else None
        discard(store, [p.key for p in parts if p.key not in committed and p.key != unsure])
        if current is not None and unsure is not None and not holds(settings, current):
            discard(store, [unsure])
        raise


def holds(settings: Settings, part: Part) -> bool:
    """Whether the part's table holds its file (a commit whose answer was lost may have
    been made); True when that cannot be told: an orphan file is better than a version
    whose file is gone."""
    try:
        table = tables.load(settings, part.ref)
        return table is not None and any(url.endswith(part.key) for url in table.file_uris())
    except Exception:
        return True


def committed_report(settings: Settings, refs: list[TableRef], run_id: str) -> LayerReport | None:
    """The report run `run_id` committed, when every one of these tables holds its commit
    (a run that lost a race, or stopped, between two tables is built again)."""
    found = None
    for ref in refs:
        found = tables.find_commit(tables.load(settings, ref), run_id, settings)
        if found is None or found.report is None:
            return None
    return found.report if found is not None else None


def wait_for_run(
    settings: Settings, refs: list[TableRef], run_id: str, deadline: Deadline
) -> LayerReport:
    """The report of a racing attempt of the same run, once all of its commits are made."""
    pause = _WAIT_FIRST
    while (report := committed_report(settings, refs, run_id)) is None:
        try:
            deadline.check(f"waiting for another attempt of run {run_id} to commit its models")
        except FlowForgeError:
            raise Conflict(
                f"another attempt of run {run_id} committed some of its models and has not "
                "finished; this attempt's commit was not made"
            ) from None
        time.sleep(pause)
        pause = min(pause * 2, _WAIT_MOST)
    return report


def replay(settings: Settings, report: LayerReport, preview_rows: int) -> LayerReport:
    """A committed report as a repeated call gets it: reused, previews read again."""
    report = report.model_copy(deep=True)
    report.reused = True
    with previews(settings) as read:
        for model in report.models:
            if model.table:
                model.preview_json, warning = read(
                    TableRef(model.table), model.version, preview_rows
                )
                if warning:
                    report.warnings.append(warning)
    return report


@contextlib.contextmanager
def previews(settings: Settings) -> Iterator[Any]:
    """read(ref, version, rows) -> (the first rows as a JSON array, a warning or "")."""
    con: duckdb.DuckDBPyConnection | None = None

    def read(ref: TableRef, version: int, rows: int) -> tuple[str, str]:
        nonlocal con
        try:
            table = tables.require(settings, ref, f"table {ref}", version)
            keys = [url.removeprefix(f"s3://{settings.s3_bucket}/") for url in table.file_uris()]
            if not keys or rows == 0:
                return "[]", ""
            con = con or connect(settings)
            urls = [duckdb_url(settings, key) for key in keys]
            found = con.execute(
                f"SELECT to_json(p)::VARCHAR FROM ({read_parquet_sql(urls)} LIMIT ?) p", [rows]
            ).fetchall()
        except (FlowForgeError, duckdb.Error, delta_exceptions.DeltaError) as exc:
            message = scrub(str(exc), settings).strip().splitlines()[0][:300]
            return "[]", f"the preview of {ref} version {version} could not be read: {message}"
        return "[" + ",".join(bounded_rows([row[0] for row in found])) + "]", ""

    try:
        yield read
    finally:
        if con is not None:
            con.close()


def discard(store: ObjectStore, keys: list[str]) -> None:
    """Deletes exactly the files this attempt wrote (never a prefix: another attempt's
    files may sit beside them)."""
    with contextlib.suppress(Exception):
        store.delete_keys(keys)
