"""The output layers committed before Delta tables: a `_manifest.json` per dataset
(`{layer}/{w}/{j}/`, `dimensions/{name}/`) listing Parquet objects under `run={run_id}/`.
Read only, for `flowforge migrate`; this format is never written any more."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from flowforge.errors import FailedPrecondition, InvalidArgument
from flowforge.ids import validate_id
from flowforge.layout import LAYERS, JobKey
from flowforge.storage import ObjectStore

MANIFEST = "_manifest.json"
MIGRATED = f"{MANIFEST}.migrated"


class LegacyObject(BaseModel):
    key: str
    size_bytes: int = 0
    rows: int = 0
    source_key: str = ""
    source_etag: str = ""


class LegacyManifest(BaseModel):
    """flowforge/manifest.py's Manifest, format_version 1, as committed."""

    format_version: int = 1
    dataset: str
    run_id: str
    created_at: datetime | None = None
    data_objects: list[LegacyObject] = []
    reject_objects: list[LegacyObject] = []
    inputs: dict[str, Any] = {}
    result: dict[str, Any] = {}


@dataclass(frozen=True)
class LegacyDataset:
    """One dataset committed by a manifest: a layer's output for a job, or a dimension."""

    prefix: str  # ends with "/"
    layer: str  # bronze, silver, gold or dimensions
    job: JobKey | None
    name: str  # the job id, or the dimension's name

    @property
    def manifest_key(self) -> str:
        return self.prefix + MANIFEST

    @property
    def migrated_key(self) -> str:
        return self.prefix + MIGRATED


def find_datasets(
    objects: ObjectStore,
    workflows: list[str] | None = None,
    dimensions: list[str] | None = None,
) -> list[LegacyDataset]:
    """Every dataset folder of the old layout (migrated or not), bronze before silver before
    gold before dimensions; only these workflows and dimensions when given."""
    found = []
    for layer in LAYERS:
        for workflow in _ids(objects, f"{layer}/"):
            if workflows is not None and workflow not in workflows:
                continue
            for job in _ids(objects, f"{layer}/{workflow}/"):
                prefix = f"{layer}/{workflow}/{job}/"
                found.append(LegacyDataset(prefix, layer, JobKey(workflow, job), job))
    if dimensions is None or dimensions:
        for name in _ids(objects, "dimensions/"):
            if dimensions is None or name in dimensions:
                found.append(LegacyDataset(f"dimensions/{name}/", "dimensions", None, name))
    return found


def _ids(objects: ObjectStore, prefix: str) -> list[str]:
    """The folders under prefix named like IDs (not `_rejects`, `run=...`, `_delta_log`)."""
    names = []
    for folder in objects.list_prefixes(prefix):
        name = folder[len(prefix) :].rstrip("/")
        try:
            names.append(validate_id(name, "folder"))
        except InvalidArgument:
            continue
    return names


def read_manifest(objects: ObjectStore, key: str) -> LegacyManifest | None:
    if objects.head(key) is None:
        return None
    try:
        return LegacyManifest.model_validate_json(objects.get_bytes(key))
    except ValidationError as exc:
        raise FailedPrecondition(
            f"s3://{objects.bucket}/{key} is not a readable manifest: {exc.errors()[0]['msg']}"
        ) from None
