"""A job's landing prefix as the triggers and retention see it: the CSV objects bronze
would read, and which of them bronze has ingested.

`ingested()` is the one place that knows how bronze records what it read: today the
committed manifest's `inputs.landing` (key and ETag of every file its output holds); with
bronze writing the Delta table `bronze/{w}/{j}`, the table's `_source_key`/`_source_etag`
pairs. Switch it there and nothing else changes.
"""

from __future__ import annotations

from flowforge.layout import Dataset, JobKey, landing_prefix
from flowforge.manifest import read_committed
from flowforge.storage import ObjectInfo, ObjectStore


def landing_files(objects: ObjectStore, job: JobKey) -> dict[str, ObjectInfo]:
    """key -> object of every CSV under the job's landing prefix (one listing), as bronze
    chooses them: names ending in .csv in any case, in any folder below the prefix."""
    return {o.key: o for o in objects.list(landing_prefix(job)) if o.key.lower().endswith(".csv")}


def ingested(objects: ObjectStore, job: JobKey) -> set[tuple[str, str]]:
    """(key, ETag) of every landing file whose rows bronze's committed output holds."""
    committed = read_committed(objects, Dataset.for_layer("bronze", job))
    if committed is None:
        return set()
    return {
        (str(i["key"]), str(i["etag"]))
        for i in committed.manifest.inputs.get("landing", [])
        if isinstance(i, dict) and "key" in i and "etag" in i
    }
