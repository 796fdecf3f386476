"""Which landing files bronze's tables hold, and the files holding them.

What a table holds is read from the table itself, never from a listing: each data file's
add action carries the exact min/max of its landing file's key and ETag (bronze writes one
landing file per data file); files without such stats are read, two columns of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.transaction import RemoveAction

from flowforge import tables
from flowforge.errors import FailedPrecondition, Unavailable
from flowforge.settings import Settings
from flowforge.table_files import remove_action
from flowforge.tables import TableRef


@dataclass
class Held:
    """What a table holds of one landing file."""

    etag: str  # "" when its rows carry more than one ETag
    rows: int = 0
    files: dict[str, int] = field(default_factory=dict)  # path in the table -> size
    shared: bool = False  # one of its files also holds other landing files' rows


def holdings(
    settings: Settings, ref: TableRef, table: DeltaTable | None, key: str, etag: str
) -> dict[str, Held]:
    """Landing key -> what the table's loaded version holds of it."""
    if table is None:
        return {}
    held: dict[str, Held] = {}
    unknown: dict[str, dict[str, Any]] = {}
    for action in pa.table(table.get_add_actions(flatten=True)).to_pylist():
        source, version = single_value(action, key), single_value(action, etag)
        rows = action.get("num_records")
        if source is None or version is None or rows is None:
            unknown[f"{ref.uri(settings)}/{action['path']}"] = action
        else:
            hold(held, source, version, rows, action, shared=False)
    if unknown:
        counts = scan_sources(settings, ref, list(unknown), key, etag)
        files = counts.group_by("__file").len("sources")
        shared = {f for f, n in files.iter_rows() if n > 1}
        for uri, source, version, rows in counts.iter_rows():
            hold(held, source, version, rows, unknown[uri], shared=uri in shared)
    return held


def single_value(action: dict[str, Any], column: str) -> str | None:
    """The column's one value in the file, when its stats say it has exactly one."""
    low, high = action.get(f"min.{column}"), action.get(f"max.{column}")
    if low is None or low != high or action.get(f"null_count.{column}") != 0:
        return None
    return str(low)


def hold(
    held: dict[str, Held], source: str, etag: str, rows: int, action: dict[str, Any], shared: bool
) -> None:
    entry = held.setdefault(source, Held(etag))
    if entry.etag != etag:
        entry.etag = ""
    entry.rows += int(rows)
    entry.files[str(action["path"])] = int(action["size_bytes"])
    entry.shared = entry.shared or shared


def scan_sources(
    settings: Settings, ref: TableRef, uris: list[str], key: str, etag: str
) -> pl.DataFrame:
    """(file, landing key, ETag, rows) of files whose stats do not name one landing file."""
    try:
        return (
            pl.scan_parquet(
                uris,
                storage_options=tables.polars_options(settings),
                include_file_paths="__file",
                hive_partitioning=False,
            )
            .group_by("__file", key, etag)
            .len()
            .collect()
        )
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise Unavailable(f"could not read the files of {ref}: {tables.first_line(exc)}") from None


def committed_etags(*held: dict[str, Held]) -> dict[str, str]:
    """Landing key -> the ETag every table holds it with ("" when they disagree)."""
    etags: dict[str, set[str]] = {}
    for table in held:
        for source, entry in table.items():
            etags.setdefault(source, set()).add(entry.etag)
    return {source: (found.pop() if len(found) == 1 else "") for source, found in etags.items()}


def removals(held: dict[str, Held], replaced: set[str], ref: TableRef) -> list[RemoveAction]:
    """Removes every file holding rows of the replaced landing files."""
    files: dict[str, int] = {}
    for source in sorted(replaced & held.keys()):
        if held[source].shared:
            raise FailedPrecondition(
                f"{ref} holds rows of {source} in files shared with other landing files, "
                "which bronze cannot replace alone: ingest with full_refresh"
            )
        files.update(held[source].files)
    return [remove_action(path, size) for path, size in files.items()]
