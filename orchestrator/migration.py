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
from dataclasses import dataclass, field
from typing import Any

from deltalake.transaction import create_table_with_add_actions

from flowforge import tables
from flowforge.errors import FailedPrecondition, FlowForgeError
from flowforge.reports import LayerReport, load_report
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from orchestrator.legacy import (
    LegacyDataset,
    LegacyManifest,
    LegacyObject,
    find_datasets,
    read_manifest,
)
from orchestrator.legacy_files import add_action, place, table_schema

log = logging.getLogger(__name__)
MIGRATED_FROM = "migrated_from"


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
    placed = [place(settings, objects, ref, o) for o in listed]
    done.rewritten = sum(p.how == "rewritten" for p in placed)
    done.copied = sum(p.how == "copied" for p in placed)
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
