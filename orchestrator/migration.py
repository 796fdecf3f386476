"""`flowforge migrate`: every dataset committed by a manifest (orchestrator/legacy.py)
becomes version 0 of its Delta tables, without copying its data.

The table's first commit adds the Parquet objects the manifest lists where they are
(`run={run_id}/part-....parquet`, relative to the table's folder). Two things cannot stay
as they are:
- Files holding types Delta has no reader type for are rewritten in place, same key:
  `_row_hash` was UInt64 (the same 64 bits become Int64, as the layers now write it; a
  reader of an Int64 table refuses a UInt64 file, delta-rs and polars alike), other
  unsigned integers are widened, nanosecond times become microseconds, null-only and
  time-of-day columns text. In practice: every bronze and silver part.
- Objects outside the table's folder (bronze rejects and silver quarantine, which lived
  under the main dataset; gold models, one file per model) are copied (server side) into
  their own tables' folders: a table only adds files under its own folder.

The commit carries the manifest's run id and report, so a repeated call of that run finds
it, and `flowforge.inputs.migrated_from` names the manifest. Afterwards `_manifest.json`
is renamed `_manifest.json.migrated`, and the objects stay where they are. A second run
changes nothing: a dataset whose manifest was renamed is done; a crash half-way is
finished by the next run (a table already made from this manifest is kept).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl
from deltalake import Schema
from deltalake.transaction import AddAction, create_table_with_add_actions

from flowforge import tables
from flowforge.errors import FailedPrecondition, FlowForgeError
from flowforge.reports import LayerReport, load_report
from flowforge.settings import Settings
from flowforge.storage import ObjectStore, polars_storage_options, s3_url
from flowforge.tables import TableRef
from orchestrator.legacy import (
    LegacyDataset,
    LegacyManifest,
    LegacyObject,
    find_datasets,
    read_manifest,
)

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

log = logging.getLogger(__name__)
MIGRATED_FROM = "migrated_from"
ROW_HASH = "_row_hash"
# Delta has no unsigned integers: each is widened to a signed type holding all its values.
WIDER: dict[Any, pl.DataType] = {
    pl.UInt8: pl.Int16(),
    pl.UInt16: pl.Int32(),
    pl.UInt32: pl.Int64(),
    pl.UInt64: pl.Decimal(20, 0),
    pl.Int128: pl.Decimal(38, 0),
    pl.UInt128: pl.Decimal(38, 0),
}


@dataclass(frozen=True)
class Placed:
    """An object the table adds: where it is now (relative to the table) and its rows."""

    key: str
    rows: int
    source_key: str
    source_etag: str
    schema: pl.Schema


@dataclass
class TableMigration:
    table: str
    files: int = 0
    rows: int = 0
    rewritten: int = 0  # files rewritten for their types
    copied: int = 0  # objects copied into the table's folder
    existed: bool = False  # made by an earlier run of the migration


@dataclass
class DatasetMigration:
    manifest: str
    status: str = "migrated"  # migrated, already migrated, failed
    tables: list[TableMigration] = field(default_factory=list)
    error: str = ""


def migrate(
    settings: Settings,
    objects: ObjectStore,
    workflows: list[str] | None = None,
    dimensions: list[str] | None = None,
) -> list[DatasetMigration]:
    """Migrates every dataset committed by a manifest (or only these workflows' and
    dimensions'); one that fails is reported and the others are still migrated."""
    tables.require_conditional_writes(objects)
    done = []
    for dataset in find_datasets(objects, workflows, dimensions):
        manifest = read_manifest(objects, dataset.manifest_key)
        if manifest is None:
            if objects.head(dataset.migrated_key) is not None:
                done.append(DatasetMigration(dataset.migrated_key, "already migrated"))
            continue  # a folder of Delta tables only
        try:
            done.append(migrate_dataset(settings, objects, dataset, manifest))
        except FlowForgeError as exc:
            log.warning("migrating %s failed: %s", dataset.manifest_key, exc.message)
            done.append(DatasetMigration(dataset.manifest_key, "failed", error=exc.message))
    return done


def migrate_dataset(
    settings: Settings, objects: ObjectStore, dataset: LegacyDataset, manifest: LegacyManifest
) -> DatasetMigration:
    result = DatasetMigration(dataset.manifest_key)
    strays = [
        o.key
        for o in [*manifest.data_objects, *manifest.reject_objects]
        if not o.key.startswith(dataset.prefix) or "/../" in o.key
    ]
    if strays:
        raise FailedPrecondition(
            f"{dataset.manifest_key} lists {strays[0]!r}, outside its dataset: not migrated"
        )
    report = legacy_report(manifest)
    inputs = {MIGRATED_FROM: dataset.manifest_key, "legacy": manifest.inputs}
    job = dataset.job
    plan: list[tuple[TableRef, list[LegacyObject], dict[str, Any], dict[str, str]]]
    if job is None:  # a dimension: the upload's file and fingerprint, as uploads record them
        main = TableRef.dimension(dataset.name)
        plan = [(main, manifest.data_objects, inputs | manifest.inputs, {})]
    elif dataset.layer == "gold":
        plan = [
            (TableRef.gold_model(job, model_name(o)), [o], inputs, {})
            for o in manifest.data_objects
        ]
    else:
        main = TableRef.bronze(job) if dataset.layer == "bronze" else TableRef.silver(job)
        side = (
            TableRef.bronze_rejects(job)
            if dataset.layer == "bronze"
            else TableRef.silver_quarantine(job)
        )
        extra = main_inputs(objects, dataset, manifest)
        config = tables.CHANGE_DATA_FEED if dataset.layer == "bronze" else {}
        plan = [(main, manifest.data_objects, inputs | extra, config)]
        if manifest.reject_objects:  # else the layer makes it when it first sets rows aside
            plan.append((side, manifest.reject_objects, inputs, {}))
            report = with_side_table(report, side)
    for ref, listed, commit_inputs, configuration in plan:
        result.tables.append(
            make_table(
                settings, objects, ref, listed, manifest, report, commit_inputs, configuration
            )
        )
    # Renamed last: until then a crashed migration is finished by the next run.
    objects.copy(dataset.manifest_key, dataset.migrated_key)
    objects.delete_keys([dataset.manifest_key])
    return result


def make_table(
    settings: Settings,
    objects: ObjectStore,
    ref: TableRef,
    listed: list[LegacyObject],
    manifest: LegacyManifest,
    report: LayerReport | None,
    inputs: dict[str, Any],
    configuration: dict[str, str],
) -> TableMigration:
    """Version 0 of `ref` from the objects the manifest lists (or the table an earlier run
    of the migration made from this manifest)."""
    done = TableMigration(ref.path)
    if not listed:  # nothing committed (an empty file): the layer makes the table itself
        return done
    existing = tables.load(settings, ref)
    if existing is not None:
        first = tables.history(existing, tables.HISTORY_SCAN)[-1]
        if first.version != 0 or first.inputs.get(MIGRATED_FROM) != inputs[MIGRATED_FROM]:
            raise FailedPrecondition(
                f"table {ref} already exists and was not made from {inputs[MIGRATED_FROM]}: "
                "the dataset was not migrated (move the table away to migrate it)"
            )
        done.existed = True
        return done
    placed = [place(settings, objects, ref, o, done) for o in listed]
    schema = table_schema(ref, placed)
    actions = [add_action(objects, ref, p) for p in placed]
    done.files, done.rows = len(actions), sum(p.rows for p in placed)
    if report is not None:
        report = report.model_copy(
            update={"table": ref.path, "table_version": 0, "manifest_key": commit_key(ref)}
        )
    with tables.delta_errors(f"migrating {inputs[MIGRATED_FROM]} into {ref}", ref):
        create_table_with_add_actions(
            ref.uri(settings),
            schema,
            actions,
            mode="error",
            configuration=configuration or None,
            storage_options=tables.storage_options(settings),
            commit_properties=tables.commit_properties(manifest.run_id, report, inputs),
        )
    return done


def place(
    settings: Settings, objects: ObjectStore, ref: TableRef, obj: LegacyObject, done: TableMigration
) -> Placed:
    """The object inside the table's folder, in types Delta holds: left where it is,
    rewritten in place, copied, or rewritten into the table's folder."""
    target = obj.key if obj.key.startswith(ref.prefix) else inside(ref, obj.key)
    source = target if objects.head(target) is not None else obj.key  # copied by a past run
    schema = pl.scan_parquet(
        s3_url(settings, source), storage_options=polars_storage_options(settings)
    ).collect_schema()
    casts = storable_casts(schema)
    if casts:
        rewrite(settings, objects, source, target, casts)
        done.rewritten += 1
    elif source != target:
        objects.copy(source, target)
        done.copied += 1
    typed = pl.Schema({name: casts[name][1] if name in casts else t for name, t in schema.items()})
    return Placed(target, obj.rows, obj.source_key, obj.source_etag, typed)


def inside(ref: TableRef, key: str) -> str:
    """Where an object from outside a table goes in its folder: `run={id}/{file name}`."""
    run = next((part for part in key.split("/") if part.startswith("run=")), "run=migrated")
    return f"{ref.prefix}{run}/{key.rsplit('/', 1)[-1]}"


def storable_casts(schema: pl.Schema) -> dict[str, tuple[pl.Expr, pl.DataType]]:
    """The columns whose type Delta cannot hold, with how each becomes one it can."""
    casts: dict[str, tuple[pl.Expr, pl.DataType]] = {}
    for name, dtype in schema.items():
        if name == ROW_HASH and dtype == pl.UInt64:
            casts[name] = (pl.col(name).reinterpret(signed=True), pl.Int64())
            continue
        wanted = storable(dtype)
        if wanted != dtype:
            casts[name] = (pl.col(name).cast(wanted), wanted)
    return casts


def storable(dtype: PolarsDataType) -> pl.DataType:
    """The nearest type Delta holds with every value (nested types member by member)."""
    base = dtype.base_type()
    if base in WIDER:
        return WIDER[base]
    if base in (pl.Null, pl.Time, pl.Duration, pl.Categorical, pl.Enum):
        return pl.String()
    if not isinstance(dtype, pl.DataType):  # a bare class: no parameters to carry
        return dtype()
    if isinstance(dtype, pl.Datetime) and dtype.time_unit != "us":
        return pl.Datetime("us", dtype.time_zone)
    if isinstance(dtype, pl.List | pl.Array):
        return pl.List(storable(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pl.Struct([pl.Field(f.name, storable(f.dtype)) for f in dtype.fields])
    return dtype


def rewrite(
    settings: Settings,
    objects: ObjectStore,
    source: str,
    target: str,
    casts: dict[str, tuple[pl.Expr, pl.DataType]],
) -> None:
    """Streams `source` through the casts into `target` (the same key: replaced whole by
    the upload, so a crash leaves either file, never half of one)."""
    frame = pl.scan_parquet(
        s3_url(settings, source), storage_options=polars_storage_options(settings)
    )
    with tempfile.NamedTemporaryFile(prefix="flowforge-migrate-", suffix=".parquet") as spool:
        frame.with_columns(expr for expr, _ in casts.values()).sink_parquet(
            spool.name, compression="zstd", statistics=True
        )
        with open(spool.name, "rb") as stream:
            objects.upload(target, stream)


def table_schema(ref: TableRef, placed: list[Placed]) -> Schema:
    """Every file's columns, in order of first appearance (a later file may add some)."""
    merged: dict[str, pl.DataType] = {}
    for file in placed:
        for name, dtype in file.schema.items():
            if merged.setdefault(name, dtype) != dtype:
                raise FailedPrecondition(
                    f"table {ref}: column {name!r} is {merged[name]} in one file and {dtype} "
                    f"in {file.key}"
                )
    return Schema.from_arrow(pl.DataFrame(schema=merged).to_arrow().schema)


def add_action(objects: ObjectStore, ref: TableRef, placed: Placed) -> AddAction:
    info = objects.head(placed.key)
    if info is None:
        raise FailedPrecondition(f"s3://{objects.bucket}/{placed.key} is missing")
    stats: dict[str, Any] = {"numRecords": placed.rows}
    # A bronze part holds one landing file's rows: the stats say which, so bronze can tell
    # the files it already holds from the table's log alone.
    sources = {"_source_key": placed.source_key, "_source_etag": placed.source_etag}
    known = {k: v for k, v in sources.items() if v and k in placed.schema}
    if known:
        stats |= {"minValues": known, "maxValues": known, "nullCount": dict.fromkeys(known, 0)}
    modified = info.last_modified or datetime.now(UTC)
    return AddAction(
        placed.key[len(ref.prefix) :],
        info.size,
        {},
        int(modified.timestamp() * 1000),
        True,
        json.dumps(stats),
    )


def model_name(obj: LegacyObject) -> str:
    return obj.key.rsplit("/", 1)[-1].removesuffix(".parquet")


def commit_key(ref: TableRef) -> str:
    return f"{ref}/_delta_log/{0:020d}.json"


def legacy_report(manifest: LegacyManifest) -> LayerReport | None:
    """The report the manifest kept (a repeat of its run replays it), when readable."""
    try:
        return load_report(manifest.result) if manifest.result else None
    except (ValueError, KeyError, TypeError):
        return None


def with_side_table(report: LayerReport | None, side: TableRef) -> LayerReport | None:
    if report is None:
        return None
    return report.model_copy(update={"side_table": side.path, "side_version": 0})


def main_inputs(
    objects: ObjectStore, dataset: LegacyDataset, manifest: LegacyManifest
) -> dict[str, Any]:
    """What the layer's own commits record, where the manifest says it: bronze's landing
    files; the bronze version silver read (0, the migrated bronze, when silver read the
    bronze run that is migrated) and its spec's hash."""
    if dataset.layer == "bronze":
        return {"landing": manifest.inputs.get("landing", [])}
    found: dict[str, Any] = {}
    spec = manifest.inputs.get("spec")
    if isinstance(spec, dict):
        found["spec"] = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    assert dataset.job is not None
    bronze_prefix = f"bronze/{dataset.job.workflow_id}/{dataset.job.job_id}/"
    bronze = read_manifest(objects, bronze_prefix + "_manifest.json") or read_manifest(
        objects, bronze_prefix + "_manifest.json.migrated"
    )
    read = manifest.inputs.get("bronze") or {}
    if bronze is not None and read.get("run_id") == bronze.run_id:
        found["bronze"] = {"version": 0, "run_id": bronze.run_id}
    return found
