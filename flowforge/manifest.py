"""The manifest protocol: how every layer publishes its output atomically.

A run writes its objects under a run-scoped prefix, then commits by writing one small
manifest object. Readers trust only the committed manifest and never list a prefix, so
a crash mid-write leaves the previous output intact. The commit is a conditional write
where the store honours one (a lost race is `Conflict`), and run prefixes the new
manifest no longer references are deleted after the commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from flowforge.errors import Conflict, FailedPrecondition
from flowforge.layout import Dataset
from flowforge.storage import ObjectStore

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


class ManifestObject(BaseModel):
    key: str
    size_bytes: int
    rows: int
    source_key: str = ""
    source_etag: str = ""


class ManifestColumn(BaseModel):
    name: str
    type: str


class Manifest(BaseModel):
    format_version: int = FORMAT_VERSION
    dataset: str
    run_id: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    data_objects: list[ManifestObject] = []
    reject_objects: list[ManifestObject] = []
    columns: list[ManifestColumn] = []
    # What the run read: landing objects with ETags, or the upstream manifest's run id.
    inputs: dict[str, Any] = {}
    # The layer's own report (its LayerResult as JSON), replayed for an idempotent repeat.
    result: dict[str, Any] = {}

    @property
    def total_rows(self) -> int:
        return sum(o.rows for o in self.data_objects)


@dataclass(frozen=True)
class Committed:
    manifest: Manifest
    etag: str


def read_committed(store: ObjectStore, dataset: Dataset) -> Committed | None:
    """The committed manifest of a dataset, or None when nothing was ever committed."""
    if store.head(dataset.manifest_key) is None:
        return None
    data, etag = store.get_with_etag(dataset.manifest_key)
    try:
        return Committed(Manifest.model_validate_json(data), etag)
    except ValueError as exc:
        raise FailedPrecondition(
            f"the manifest s3://{store.bucket}/{dataset.manifest_key} is not readable: {exc}"
        ) from None


def require_committed(store: ObjectStore, dataset: Dataset, what: str) -> Committed:
    committed = read_committed(store, dataset)
    if committed is None:
        raise FailedPrecondition(
            f"{what} has not been committed (no s3://{store.bucket}/{dataset.manifest_key})"
        )
    return committed


def start_run(store: ObjectStore, dataset: Dataset, run_id: str, previous: Committed | None) -> str:
    """Clears what an earlier, uncommitted attempt of this run id left; returns the prefix.

    A run id that the committed manifest still references (bronze keeps an older run's
    parts for files it skipped) is refused: clearing its prefix would delete committed data,
    and writing under it would overwrite objects readers trust. (A repeat of the committed
    run itself is replayed by the caller before it gets here.)
    """
    if previous is not None and run_id in referenced_runs(previous.manifest, dataset):
        raise FailedPrecondition(
            f"run id {run_id!r} is part of the committed output of {dataset.prefix} "
            f"(committed by run {previous.manifest.run_id}); start a run with a new run id"
        )
    prefix = dataset.run_prefix(run_id)
    removed = store.delete_prefix(prefix)
    if removed:
        log.info("cleared an uncommitted attempt", extra={"prefix": prefix, "objects": removed})
    return prefix


def commit(
    store: ObjectStore, dataset: Dataset, manifest: Manifest, previous: Committed | None
) -> str:
    """Publishes the manifest if nobody else committed since `previous` was read.

    Raises Conflict (gRPC ABORTED) when another writer won; this run's objects are then
    deleted so nothing half-published remains. Returns the manifest key.
    """
    body = manifest.model_dump_json(indent=1).encode()
    conditional = store.supports_conditional_writes()
    try:
        if not conditional:
            store.put_bytes(dataset.manifest_key, body, content_type="application/json")
        elif previous is None:
            store.put_bytes(
                dataset.manifest_key, body, content_type="application/json", if_none_match=True
            )
        else:
            store.put_bytes(
                dataset.manifest_key,
                body,
                content_type="application/json",
                if_match=previous.etag,
            )
    except Conflict:
        winner = read_committed(store, dataset)
        if winner is None or winner.manifest.run_id != manifest.run_id:
            store.delete_prefix(dataset.run_prefix(manifest.run_id))
        raise Conflict(
            f"another run committed {dataset.prefix} first"
            + (f" (run {winner.manifest.run_id})" if winner else "")
            + "; this run's output was discarded"
        ) from None
    collect_garbage(store, dataset, manifest)
    return dataset.manifest_key


def collect_garbage(store: ObjectStore, dataset: Dataset, manifest: Manifest) -> list[str]:
    """Deletes run prefixes that the committed manifest no longer references."""
    keep = referenced_runs(manifest, dataset)
    removed = []
    for prefix in store.list_prefixes(dataset.prefix):
        name = prefix[len(dataset.prefix) :].rstrip("/")
        if name.startswith("run=") and name[4:] not in keep and store.delete_prefix(prefix):
            removed.append(prefix)
    if removed:
        log.info("deleted superseded runs", extra={"dataset": dataset.prefix, "runs": removed})
    return removed


def referenced_runs(manifest: Manifest, dataset: Dataset) -> set[str]:
    """The run ids whose prefixes hold objects the manifest lists (and its own)."""
    objects = [*manifest.data_objects, *manifest.reject_objects]
    return {manifest.run_id} | {run_id_of(o.key, dataset) for o in objects}


def run_id_of(key: str, dataset: Dataset) -> str:
    rest = key[len(dataset.prefix) :]
    return rest.split("/", 1)[0].removeprefix("run=")
