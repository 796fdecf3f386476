"""A job's landing files: listing them and deleting one (its rows stay in bronze until a
run forgets the file or a full refresh ingests landing again)."""

from __future__ import annotations

from flowforge.errors import InvalidArgument, NotFound
from flowforge.layout import JobKey, landing_prefix
from flowforge.storage import ObjectInfo, ObjectStore


def landing_files(store: ObjectStore, job: JobKey) -> list[ObjectInfo]:
    """The objects under the job's landing prefix, by key (folders left out)."""
    prefix = landing_prefix(job)
    return sorted(
        (
            o
            for o in store.list(prefix)
            if not o.key.endswith("/") and "/" not in o.key[len(prefix) :]
        ),
        key=lambda o: o.key,
    )


def delete_landing_file(store: ObjectStore, job: JobKey, name: str) -> ObjectInfo:
    """Deletes one landing file by name; NotFound when there is none of that name."""
    if not name or "/" in name or len(name) > 1024 or any(ord(c) < 32 for c in name):
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise InvalidArgument(f"file {shown!r} is not a landing file name")
    key = landing_prefix(job) + name
    found = store.head(key)
    if found is None:
        raise NotFound(f"s3://{store.bucket}/{key} does not exist")
    store.delete_keys([key])
    return found


def delete_workflow_data(store: ObjectStore, workflow_id: str) -> int:
    """Deletes every object of a workflow: its landing files and all its tables (bronze,
    silver, gold). Returns how many objects there were."""
    return sum(
        store.delete_prefix(f"{area}/{workflow_id}/")
        for area in ("landing", "bronze", "silver", "gold")
    )
