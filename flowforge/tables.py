"""FlowForge's tables: open Delta Lake tables on the object store, written with delta-rs.

    bronze/{w}/{j}               raw text rows + audit columns (change data feed on)
    bronze/{w}/_rejects/{j}      rows bronze could not parse, with the reason
    silver/{w}/{j}               typed, validated, deduplicated rows
    silver/{w}/_quarantine/{j}   rows that broke a rule, with the rule
    gold/{w}/{j}/{model}         one table per job model
    gold/{w}/_workflow/{model}   one table per workflow model
    dimensions/{name}            reference tables that gold models read as dim_{name}

Side tables live outside the main tables' folders (a vacuum lists a table's folder
recursively), and IDs cannot start with "_", so `_rejects` can never be a job's name.

Each layer is the only writer of its tables. A commit carries the execution's run id, what
it read (`flowforge.inputs`) and the layer's report (`flowforge.report`) as commit metadata,
and the application transaction `flowforge-{run_id}`: a repeated call after a lost answer
finds its commit (`find_commit`) and returns the recorded report instead of writing again.
delta-rs commits every version with a conditional PUT (If-None-Match), so of two writers one
wins and the other gets CommitFailedError (ABORTED here); there is no other lock, which is
why a store that ignores conditional writes is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake import exceptions as delta_exceptions

from flowforge.errors import (
    Conflict,
    FailedPrecondition,
    FlowForgeError,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from flowforge.ids import ID_PATTERN, validate_id
from flowforge.layout import JobKey
from flowforge.reports import LayerReport, load_report
from flowforge.settings import Settings
from flowforge.storage import ObjectStore

log = logging.getLogger(__name__)

RUN_ID_KEY = "flowforge.run_id"
REPORT_KEY = "flowforge.report"
INPUTS_KEY = "flowforge.inputs"
# What a FlowForge table sets when it is created: the change data feed (silver reads
# bronze's changes), and append-only off (files are replaced).
CHANGE_DATA_FEED = {"delta.enableChangeDataFeed": "true"}
# Reader features read_parquet over a version's files handles; anything else (deletion
# vectors, column mapping, ...) changes what the files mean, so such a table is refused.
SUPPORTED_READER_FEATURES = frozenset({"timestampNtz"})
# How far back a repeated call looks for its own commit, newest first.
HISTORY_SCAN = 1000
# Commits that rewrite or clean up files without changing a table's rows (`flowforge
# maintain`): a version followed only by these still holds the table's current data.
MAINTENANCE_OPERATIONS = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END"})
# Every table path FlowForge writes, and nothing else: IDs cannot start with "_", so the
# side tables' folders never read as a job, and a model's folder never as a table.
TABLE_SHAPES = (
    "bronze/{workflow}/{job}",
    "bronze/{workflow}/_rejects/{job}",
    "silver/{workflow}/{job}",
    "silver/{workflow}/_quarantine/{job}",
    "gold/{workflow}/{job}/{model}",
    "gold/{workflow}/_workflow/{model}",
    "dimensions/{name}",
)
TABLE_PATH_PATTERN = "|".join(
    shape.replace("{workflow}", ID_PATTERN)
    .replace("{job}", ID_PATTERN)
    .replace("{model}", ID_PATTERN)
    .replace("{name}", ID_PATTERN)
    for shape in TABLE_SHAPES
)
_TABLE_PATH = re.compile(TABLE_PATH_PATTERN)
# What each shape holds, for listings.
_KINDS = {
    ("bronze", 3): "bronze",
    ("bronze", 4): "bronze rejects",
    ("silver", 3): "silver",
    ("silver", 4): "silver quarantine",
    ("gold", 4): "gold model",
    ("dimensions", 2): "dimension",
}


@dataclass(frozen=True)
class TableRef:
    """Where one table lives in the bucket: its key prefix, without a trailing slash."""

    path: str

    @classmethod
    def bronze(cls, job: JobKey) -> TableRef:
        return cls(f"bronze/{job.workflow_id}/{job.job_id}")

    @classmethod
    def bronze_rejects(cls, job: JobKey) -> TableRef:
        return cls(f"bronze/{job.workflow_id}/_rejects/{job.job_id}")

    @classmethod
    def silver(cls, job: JobKey) -> TableRef:
        return cls(f"silver/{job.workflow_id}/{job.job_id}")

    @classmethod
    def silver_quarantine(cls, job: JobKey) -> TableRef:
        return cls(f"silver/{job.workflow_id}/_quarantine/{job.job_id}")

    @classmethod
    def gold_model(cls, job: JobKey, model: str) -> TableRef:
        return cls(f"gold/{job.workflow_id}/{job.job_id}/{validate_id(model, 'model')}")

    @classmethod
    def workflow_model(cls, workflow_id: str, model: str) -> TableRef:
        workflow = validate_id(workflow_id, "workflow_id")
        return cls(f"gold/{workflow}/_workflow/{validate_id(model, 'model')}")

    @classmethod
    def dimension(cls, name: str) -> TableRef:
        return cls(f"dimensions/{validate_id(name, 'dimension')}")

    @classmethod
    def parse(cls, path: str, field: str = "table") -> TableRef:
        """The table at `path` when it has the shape of one FlowForge writes; InvalidArgument
        naming `field` otherwise (so no other key of the bucket is ever read as a table)."""
        if not isinstance(path, str) or _TABLE_PATH.fullmatch(path) is None:
            shown = path if isinstance(path, str) and len(path) <= 120 else f"{str(path)[:117]}..."
            raise InvalidArgument(
                f"{field} {shown!r} is not a FlowForge table: expected one of "
                + ", ".join(TABLE_SHAPES)
            )
        return cls(path)

    @property
    def job(self) -> JobKey | None:
        """The job whose executions write this table (None: a dimension, a workflow model)."""
        parts = self.path.split("/")
        if parts[0] == "dimensions" or (parts[0] == "gold" and parts[2] == "_workflow"):
            return None
        return JobKey(parts[1], parts[2] if parts[0] == "gold" else parts[-1])

    @property
    def kind(self) -> str:
        """bronze, bronze rejects, silver, silver quarantine, gold model, workflow model or
        dimension."""
        parts = self.path.split("/")
        if parts[0] == "gold" and parts[2] == "_workflow":
            return "workflow model"
        return _KINDS.get((parts[0], len(parts)), "table")

    @property
    def workflow_id(self) -> str | None:
        parts = self.path.split("/")
        return None if parts[0] == "dimensions" else parts[1]

    @property
    def prefix(self) -> str:
        """The folder of the table's objects (its data files and `_delta_log/`)."""
        return f"{self.path}/"

    def uri(self, settings: Settings) -> str:
        return f"s3://{settings.s3_bucket}/{self.path}"

    def __str__(self) -> str:
        return self.path


def storage_options(settings: Settings) -> dict[str, str]:
    """Endpoint, keys, timeouts and retries for delta-rs (object_store), as for polars.

    The retries follow s3_max_attempts: object_store's own default (10 retries over up to
    3 minutes) would outlast a layer's deadline on a store that is down, instead of
    reporting UNAVAILABLE for the caller to retry with its backoff."""
    options = {
        "aws_region": settings.s3_region,
        "timeout": f"{settings.s3_read_timeout_seconds:g}s",
        "connect_timeout": f"{settings.s3_connect_timeout_seconds:g}s",
        "max_retries": str(retries(settings)),
        "retry_timeout": f"{settings.s3_read_timeout_seconds:g}s",
    }
    if settings.s3_endpoint_url:
        options["aws_endpoint_url"] = settings.s3_endpoint_url
        options["aws_allow_http"] = str(settings.s3_endpoint_url.startswith("http:")).lower()
        options["aws_virtual_hosted_style_request"] = "false"
    if settings.s3_access_key_id:
        options["aws_access_key_id"] = settings.s3_access_key_id
    if settings.s3_secret_access_key is not None:
        options["aws_secret_access_key"] = settings.s3_secret_access_key.get_secret_value()
    return options


def retries(settings: Settings) -> int:
    return max(settings.s3_max_attempts - 1, 0)


def polars_options(settings: Settings) -> dict[str, Any]:
    """storage_options for polars' own readers, which want the retry count as a number."""
    return {**storage_options(settings), "max_retries": retries(settings)}


def scan(settings: Settings, table: DeltaTable) -> pl.LazyFrame:
    """The rows of the loaded version, read by polars with the table's storage options
    (polars wants its retry count as a number)."""
    return pl.scan_delta(table, storage_options={"max_retries": retries(settings)})


def require_conditional_writes(store: ObjectStore) -> None:
    """Refuses to write tables on a store that ignores conditional writes: delta-rs's
    If-None-Match on each commit is the only thing keeping two writers apart, and a store
    that ignores it would let one silently overwrite the other's commit."""
    if not store.supports_conditional_writes():
        raise FailedPrecondition(
            f"the object store at {store.endpoint} does not honour conditional writes "
            "(If-None-Match / If-Match on PUT), which FlowForge's Delta tables need so that "
            "two writers never overwrite each other's commits; nothing was written. Use a store "
            "that does (SeaweedFS 4, AWS S3, MinIO, Ceph RGW, ...)"
        )


def load(settings: Settings, ref: TableRef, version: int | None = None) -> DeltaTable | None:
    """The table (at `version`, or the latest), or None when nothing was ever committed."""
    with delta_errors(f"reading {ref}", ref):
        try:
            return DeltaTable(
                ref.uri(settings), version=version, storage_options=storage_options(settings)
            )
        except delta_exceptions.TableNotFoundError:
            return None


def require(settings: Settings, ref: TableRef, what: str, version: int | None = None) -> DeltaTable:
    table = load(settings, ref, version)
    if table is None:
        raise FailedPrecondition(
            f"{what} has not been committed (no Delta table at s3://{settings.s3_bucket}/{ref})"
        )
    return table


def commit_properties(
    run_id: str,
    report: LayerReport | None = None,
    inputs: dict[str, Any] | None = None,
    *,
    retries: int | None = None,
    read: tuple[str, int] | None = None,
) -> CommitProperties:
    """What every FlowForge commit carries: the run, what it read, the report to replay.

    `retries=0` makes any commit made since the table was read fail the commit (Conflict):
    delta-rs otherwise retries an append on top of a concurrent one, which is right for
    blind appends but not for a writer that decided what to write from what it read.

    `read` = (upstream, version) adds a second application transaction, the same on every
    commit of the table, with the upstream version read. delta-rs lets two commits that
    only add files both land when they race from one snapshot (a blind append does not
    conflict); two commits naming the same application do conflict, so of two runs that
    read the same snapshot exactly one commits."""
    metadata: dict[str, Any] = {RUN_ID_KEY: run_id}
    if inputs:
        metadata[INPUTS_KEY] = inputs
    if report is not None:
        metadata[REPORT_KEY] = stored_report(report)
    transactions = [Transaction(app_id(run_id), 1)]
    if read is not None:
        transactions.append(Transaction(read_app_id(read[0]), read[1]))
    return CommitProperties(
        custom_metadata=metadata, max_commit_retries=retries, app_transactions=transactions
    )


def app_id(run_id: str) -> str:
    return f"flowforge-{run_id}"


def read_app_id(upstream: str) -> str:
    """Dots cannot appear in a run id, so this never names a run's transaction."""
    return f"flowforge.reads.{upstream}"


def stored_report(report: LayerReport) -> dict[str, Any]:
    """The report as a commit keeps it: gold previews stay out (they are bounded, but a
    table's log is read by every reader; a replay reads them from the table again)."""
    data = report.stored()
    for model in data.get("models", []):
        model["preview_json"] = ""
    return data


@dataclass(frozen=True)
class Commit:
    """One version of a table as FlowForge wrote it."""

    version: int
    run_id: str
    timestamp: datetime
    operation: str
    inputs: dict[str, Any]
    report: LayerReport | None

    @classmethod
    def of(cls, entry: dict[str, Any]) -> Commit:
        report = entry.get(REPORT_KEY)
        return cls(
            version=int(entry["version"]),
            run_id=str(entry.get(RUN_ID_KEY, "")),
            timestamp=datetime.fromtimestamp(int(entry.get("timestamp", 0)) / 1000, UTC),
            operation=str(entry.get("operation", "")),
            inputs=dict(entry.get(INPUTS_KEY) or {}),
            report=load_report(report) if isinstance(report, dict) else None,
        )


def history(
    table: DeltaTable, limit: int | None = None, settings: Settings | None = None
) -> list[Commit]:
    """The table's commits, newest first. With `settings`, the log is read with boto, which
    lets other threads run while the store answers; DeltaTable.history holds the GIL for
    the whole read (deltalake 1.6.6), stalling every thread of a service meanwhile."""
    if settings is not None:
        return list(commits(settings, table, limit or HISTORY_SCAN))
    with delta_errors("reading the table's history", TableRef(table.table_uri)):
        return [Commit.of(entry) for entry in table.history(limit)]


def commits(settings: Settings, table: DeltaTable, limit: int) -> Iterator[Commit]:
    """The loaded version's commit and the ones before it, newest first, read with boto;
    stops where the log was cleaned up."""
    return (Commit.of(entry) for entry in raw_history(settings, table, limit))


def raw_history(settings: Settings, table: DeltaTable, limit: int) -> Iterator[dict[str, Any]]:
    """What DeltaTable.history gives (each commitInfo with its version), newest first, but
    read with boto (other threads run while the store answers)."""
    store = log_store(settings)
    ref = ref_of(settings, table)
    newest = table.version()
    for version in range(newest, max(newest - limit, -1), -1):
        try:
            yield commit_info(store, ref, version)
        except NotFound:  # the log was cleaned up before this version
            return


def ref_of(settings: Settings, table: DeltaTable) -> TableRef:
    """The TableRef of a loaded table (its URI is s3://{bucket}/{path})."""
    return TableRef(table.table_uri.removeprefix(f"s3://{settings.s3_bucket}/").rstrip("/"))


_log_stores: dict[tuple[Any, ...], ObjectStore] = {}
_log_stores_lock = threading.Lock()


def log_store(settings: Settings) -> ObjectStore:
    """An ObjectStore for reading table logs, one per store identity (a boto client costs
    ~90 ms to make; a layer reads a log at the start of every call)."""
    secret = settings.s3_secret_access_key
    key = (
        settings.s3_endpoint_url,
        settings.s3_region,
        settings.s3_bucket,
        settings.s3_access_key_id,
        secret.get_secret_value() if secret else None,
        settings.s3_connect_timeout_seconds,
        settings.s3_read_timeout_seconds,
        settings.s3_max_attempts,
    )
    with _log_stores_lock:
        if key not in _log_stores:
            _log_stores[key] = ObjectStore(settings)
        return _log_stores[key]


def commit_at(store: ObjectStore, ref: TableRef, version: int) -> Commit:
    """One version's commit, read from its log object with boto: DeltaTable.history holds
    the GIL while it lists and reads the log (deltalake 1.6.6), stalling every other thread
    of a service for as long as the store takes to answer."""
    return Commit.of(commit_info(store, ref, version))


# What commit_info adds to a commitInfo from the commit's own actions: a commit's
# operation does not always say whether it removed files (delta-rs records a
# create_write_transaction that adds and removes files as a WRITE in Append mode).
ADDED_FILES, ADDED_ROWS, REMOVED_FILES = (
    "flowforge.added_files",
    "flowforge.added_rows",
    ("flowforge.removed_files"),
)


def commit_info(store: ObjectStore, ref: TableRef, version: int) -> dict[str, Any]:
    """One version's commitInfo (with its version), read from its log object with boto,
    with what its actions added and removed: files added and their rows (None when an add
    has no row count in its stats), files removed with a data change."""
    key = f"{ref}/_delta_log/{version:020d}.json"
    info: dict[str, Any] | None = None
    added, removed = 0, 0
    rows: int | None = 0
    for line in store.get_bytes(key).splitlines():
        action = json.loads(line) if line.strip() else {}
        if "commitInfo" in action:
            info = action["commitInfo"]
        elif "add" in action and action["add"].get("dataChange", True):
            added += 1
            stats = json.loads(action["add"].get("stats") or "{}")
            count = stats.get("numRecords")
            rows = None if rows is None or count is None else rows + int(count)
        elif "remove" in action and action["remove"].get("dataChange", True):
            removed += 1
    if info is None:
        raise FailedPrecondition(f"the commit s3://{store.bucket}/{key} has no commitInfo")
    return {
        **info,
        "version": version,
        ADDED_FILES: added,
        ADDED_ROWS: rows,
        REMOVED_FILES: removed,
    }


def find_commit(
    table: DeltaTable | None, run_id: str, settings: Settings | None = None
) -> Commit | None:
    """The commit run `run_id` made to this table, when it made one (with `settings`, the
    log is read with boto: see history)."""
    if table is None:
        return None
    with delta_errors("looking for a run's commit", TableRef(table.table_uri)):
        if table.transaction_version(app_id(run_id)) is None:
            return None
    if settings is not None:
        return next((c for c in commits(settings, table, HISTORY_SCAN) if c.run_id == run_id), None)
    with delta_errors("looking for a run's commit", TableRef(table.table_uri)):
        for entry in table.history(HISTORY_SCAN):
            if entry.get(RUN_ID_KEY) == run_id:
                return Commit.of(entry)
    return None


def data_version(table: DeltaTable) -> int:
    """The latest version whose commit changed the rows (later ones only maintained files):
    a reader of any version from this one on reads the table's current data."""
    for entry in table.history(HISTORY_SCAN):
        if entry.get("operation") not in MAINTENANCE_OPERATIONS:
            return int(entry["version"])
    return table.version()


@dataclass(frozen=True)
class Files:
    """What the loaded version of a table holds, from its add actions (no data read)."""

    count: int
    rows: int
    size_bytes: int

    @classmethod
    def of(cls, table: DeltaTable) -> Files:
        actions = pa.table(table.get_add_actions(flatten=True))
        if actions.num_rows == 0:
            return cls(0, 0, 0)
        rows = (
            actions.column("num_records").to_pylist()
            if "num_records" in actions.column_names
            else []
        )
        return cls(
            actions.num_rows,
            sum(r or 0 for r in rows),
            sum(actions.column("size_bytes").to_pylist()),
        )


def version_files(table: DeltaTable, ref: TableRef) -> list[str]:
    """The data files of the loaded version: exactly what a reader of it must read.

    Refuses a table whose reader features change what its files mean (deletion vectors,
    column mapping) or that is partitioned (values held in paths): read_parquet over the
    files would read it wrongly."""
    protocol = table.protocol()
    features = set(protocol.reader_features or ())
    unsupported = sorted(features - SUPPORTED_READER_FEATURES)
    if protocol.min_reader_version > 3 or unsupported:
        raise FailedPrecondition(
            f"table {ref} needs reader features FlowForge does not read "
            f"({', '.join(unsupported) or f'reader version {protocol.min_reader_version}'})"
        )
    if table.metadata().partition_columns:
        raise FailedPrecondition(f"table {ref} is partitioned, which FlowForge does not read")
    return list(table.file_uris())


@contextlib.contextmanager
def delta_errors(doing: str, ref: TableRef) -> Iterator[None]:
    """Turns what delta-rs raises into FlowForge's errors."""
    try:
        yield
    except FlowForgeError:
        raise
    except delta_exceptions.CommitFailedError as exc:
        raise Conflict(
            f"another run committed {ref} first while {doing} ({first_line(exc)}); "
            "this run's commit was not made"
        ) from None
    except delta_exceptions.SchemaMismatchError as exc:
        raise FailedPrecondition(
            f"{doing}: the data does not fit the schema of {ref}: {first_line(exc)}"
        ) from None
    except (delta_exceptions.DeltaError, OSError) as exc:
        text = str(exc)
        if "already exists" in text:  # a racing writer created the table first
            raise Conflict(
                f"another run created {ref} first while {doing}; this run's commit was not made"
            ) from None
        if any(s in text for s in ("object store", "Object at location", "error sending")):
            raise Unavailable(f"the object store failed while {doing}: {first_line(exc)}") from None
        raise


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def inputs_json(inputs: dict[str, Any]) -> str:
    return json.dumps(inputs, sort_keys=True)
