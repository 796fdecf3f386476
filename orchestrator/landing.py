"""A job's landing prefix as the triggers and retention see it: the CSV objects bronze
would read, and which of them bronze has ingested.

`ingested()` is the one place that knows how bronze records what it read: the pairs of
landing key and ETag its tables hold, `bronze/{w}/{j}` (`_source_key`, `_source_etag`) and
its rejects `bronze/{w}/_rejects/{j}` (`source_key`, `source_etag`: a file whose every row
was rejected is ingested too). Bronze writes one landing file per data file, so each add
action's min/max stats name the file without reading it; a data file whose stats do not
(another writer's) is read, two columns of it.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from flowforge import tables
from flowforge.errors import Unavailable
from flowforge.layout import JobKey, landing_prefix
from flowforge.settings import Settings
from flowforge.storage import ObjectInfo, ObjectStore
from flowforge.tables import TableRef


def landing_files(objects: ObjectStore, job: JobKey) -> dict[str, ObjectInfo]:
    """key -> object of every CSV under the job's landing prefix (one listing), as bronze
    chooses them: names ending in .csv in any case, in any folder below the prefix."""
    return {o.key: o for o in objects.list(landing_prefix(job)) if o.key.lower().endswith(".csv")}


def ingested(settings: Settings, job: JobKey) -> set[tuple[str, str]]:
    """(key, ETag) of every landing file whose rows (or rejects) bronze's tables hold."""
    held: set[tuple[str, str]] = set()
    for ref, key, etag in (
        (TableRef.bronze(job), "_source_key", "_source_etag"),
        (TableRef.bronze_rejects(job), "source_key", "source_etag"),
    ):
        with tables.delta_errors(f"reading {ref}", ref):
            table = tables.load(settings, ref)
            if table is None:
                continue
            unknown = []
            for action in pa.table(table.get_add_actions(flatten=True)).to_pylist():
                pair = _single(action, key), _single(action, etag)
                if pair[0] is not None and pair[1] is not None:
                    held.add((pair[0], pair[1]))
                else:
                    unknown.append(f"{ref.uri(settings)}/{action['path']}")
        if unknown:
            held |= _read_pairs(settings, ref, unknown, key, etag)
    return held


def _single(action: dict[str, object], column: str) -> str | None:
    """The column's one value in the data file, when its stats say it has exactly one."""
    low, high = action.get(f"min.{column}"), action.get(f"max.{column}")
    return str(low) if low is not None and low == high else None


def _read_pairs(
    settings: Settings, ref: TableRef, uris: list[str], key: str, etag: str
) -> set[tuple[str, str]]:
    try:
        frame = (
            pl.scan_parquet(
                uris, storage_options=tables.polars_options(settings), hive_partitioning=False
            )
            .select(key, etag)
            .unique()
            .collect()
        )
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise Unavailable(f"could not read the files of {ref}: {tables.first_line(exc)}") from None
    return {(str(k), str(e)) for k, e in frame.iter_rows() if k is not None and e is not None}
