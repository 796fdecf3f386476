"""Bronze ingest: landing CSV objects in; raw-text rows and rejects out, one commit per table."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, cast

from deltalake import DeltaTable

from flowforge import tables
from flowforge.bronze_columns import AUDIT_STATS
from flowforge.errors import InvalidArgument, NotFound
from flowforge.layout import JobKey, landing_prefix
from flowforge.parts import PartWriter
from flowforge.progress import Reporter, ignore
from flowforge.reports import DataObject, FileReport, LayerReport
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.storage import ObjectInfo, ObjectStore
from flowforge.table_files import DataFile
from flowforge.tables import TableRef
from services.bronze.convert import bronze_batches
from services.bronze.holdings import committed_etags, holdings
from services.bronze.options import CsvOptions
from services.bronze.parse import Restart
from services.bronze.publish import BronzeTables, RunFiles, discard, publish
from services.bronze.rejects import RejectWriter
from services.bronze.sniff import SAMPLE_BYTES, sniff
from services.bronze.transform import Audit, generated_column_names, unique_column_names

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestPlan:
    job: JobKey
    run_id: str
    options: CsvOptions
    full_refresh: bool = False
    forget: tuple[str, ...] = ()  # landing file names whose rows go


class ReadProgress:
    """The bytes and rows read so far across the run's landing files, told to `progress`."""

    def __init__(self, progress: Reporter, bytes_total: int, files_total: int) -> None:
        self._progress = progress
        self._done_bytes = self.rows = self.files_done = 0
        progress(
            "reading", bytes_read=0, bytes_total=bytes_total, files_done=0, files_total=files_total
        )

    def read(self, file_bytes: int, rows: int) -> None:
        """About `file_bytes` of the current file parsed so far; `rows` more rows."""
        self.rows += rows
        self._progress(bytes_read=self._done_bytes + file_bytes, rows=self.rows)

    def restart(self, rows_dropped: int) -> None:
        """The current file is read again from its start."""
        self.rows -= rows_dropped
        self._progress(bytes_read=self._done_bytes, rows=self.rows)

    def file_done(self, size: int) -> None:
        self._done_bytes += size
        self.files_done += 1
        self._progress(bytes_read=self._done_bytes, files_done=self.files_done, rows=self.rows)


@dataclass
class FileOutcome:
    report: FileReport
    rejected_by_kind: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)


def ingest(
    store: ObjectStore,
    settings: Settings,
    plan: IngestPlan,
    deadline: Deadline,
    progress: Reporter = ignore,
) -> LayerReport:
    """`progress` hears the bytes and rows read per block, then writing and committing."""
    started = time.monotonic()
    rows_ref = TableRef.bronze(plan.job)
    tables.require_conditional_writes(store)  # probed once per process, with boto's errors
    with tables.delta_errors("reading bronze's table", rows_ref):
        rows_table = tables.load(settings, rows_ref)
        done = tables.find_commit(rows_table, plan.run_id, settings)
    if done is not None and done.report is not None:
        done.report.reused = True  # a repeat after a lost answer: nothing is redone
        return done.report
    landing, ignored = landing_objects(store, plan.job, allow_empty=bool(plan.forget))
    forgotten = forget_keys(store, plan, landing)
    t = read_tables(settings, plan, rows_table)
    committed = {} if plan.full_refresh else committed_etags(t.held_rows, t.held_rejects)
    writer = PartWriter(store, rows_ref, settings.bronze_part_target_mb << 20, AUDIT_STATS)
    rejects = RejectWriter(store, t.rejects_ref)
    outcomes: list[FileOutcome] = []
    ingested_at = datetime.now(UTC)
    to_read = [i for i in landing if not (i.etag and committed.get(i.key) == i.etag)]
    reading = ReadProgress(progress, sum(i.size for i in to_read), len(to_read))
    try:
        for info in landing:
            deadline.check(f"ingesting {info.key}")
            if info.etag and committed.get(info.key) == info.etag:
                outcomes.append(FileOutcome(skipped_report(info)))
                continue
            audit = Audit(
                ingested_at, info.key, info.etag, plan.run_id, plan.job.workflow_id, plan.job.job_id
            )
            outcomes.append(
                ingest_file(store, settings, plan, info, writer, rejects, audit, deadline, reading)
            )
            reading.file_done(info.size)
        outcomes += [forgotten_outcome(key, t) for key in forgotten]
        progress("writing")
        run = run_files(plan, outcomes, writer.close(), rejects.close())
        report = describe(plan, outcomes, run, ignored)
        report.seconds = time.monotonic() - started
        deadline.check("committing")  # a caller that gave up must not see a late commit
    except BaseException:
        discard(store, [*writer.abandon(), *rejects.abandon()])
        raise
    progress("committing")
    return publish(store, settings, t, run, report)


def read_tables(settings: Settings, plan: IngestPlan, rows: DeltaTable | None) -> BronzeTables:
    """Both tables as this run reads them, with what they hold of each landing file (not
    needed for a full refresh, which replaces everything)."""
    t = BronzeTables(TableRef.bronze(plan.job), TableRef.bronze_rejects(plan.job), rows, None)
    with tables.delta_errors("reading bronze's tables", t.rows_ref):
        t.rejects = tables.load(settings, t.rejects_ref)
        if not plan.full_refresh:
            t.held_rows = holdings(settings, t.rows_ref, t.rows, "_source_key", "_source_etag")
            t.held_rejects = holdings(
                settings, t.rejects_ref, t.rejects, "source_key", "source_etag"
            )
    return t


def forget_keys(store: ObjectStore, plan: IngestPlan, landing: list[ObjectInfo]) -> list[str]:
    """The landing keys whose rows this run removes; a file still in landing is refused (it
    would be ingested again in the same run)."""
    prefix = landing_prefix(plan.job)
    present = {info.key for info in landing}
    keys = []
    for name in plan.forget:
        key = prefix + name
        if key in present:
            raise InvalidArgument(
                f"forget: {name!r} is still in s3://{store.bucket}/{prefix}: delete it from "
                "landing first (`flowforge landing rm`), or it would be ingested again"
            )
        keys.append(key)
    return keys


def forgotten_outcome(key: str, t: BronzeTables) -> FileOutcome:
    """A forgotten landing file: its rows and rejects leave bronze's tables in this commit."""
    held, rejected = t.held_rows.get(key), t.held_rejects.get(key)
    report = FileReport(key=key, status="FORGOTTEN")
    report.rows = held.rows if held else 0
    report.rows_rejected = rejected.rows if rejected else 0
    warnings = [] if held or rejected else [f"forget: bronze holds nothing of {key}"]
    return FileOutcome(report, warnings=warnings)


def run_files(
    plan: IngestPlan, outcomes: list[FileOutcome], rows: list[DataFile], rejects: list[DataFile]
) -> RunFiles:
    read = [o.report for o in outcomes if o.report.status not in ("SKIPPED", "FORGOTTEN")]
    gone = [o.report.key for o in outcomes if o.report.status == "FORGOTTEN"]
    return RunFiles(
        run_id=plan.run_id,
        rows=rows,
        rejects=rejects,
        replaced={r.key for r in read} | set(gone),
        columns=union_columns([r.columns for r in read]),
        inputs={"landing": [input_record(r) for r in read]},
        full_refresh=plan.full_refresh,
    )


def describe(
    plan: IngestPlan, outcomes: list[FileOutcome], run: RunFiles, ignored: list[str]
) -> LayerReport:
    """The run's report before its commit fills in the tables' versions."""
    read = [o.report for o in outcomes if o.report.status not in ("SKIPPED", "FORGOTTEN")]
    rejected = Counter[str]()
    for outcome in outcomes:
        rejected.update(outcome.rejected_by_kind)
    warnings = [w for o in outcomes for w in o.warnings]
    warnings += [f"ignored {key}: not a .csv object" for key in ignored]
    return LayerReport(
        layer="bronze",
        workflow_id=plan.job.workflow_id,
        job_id=plan.job.job_id,
        run_id=plan.run_id,
        output_prefix=TableRef.bronze(plan.job).prefix,
        data_objects=[data_object(f) for f in run.rows],
        reject_objects=[data_object(f) for f in run.rejects],
        rows_in=sum(r.rows + r.rows_rejected for r in read),
        rows_out=sum(r.rows for r in read),
        rows_rejected=sum(r.rows_rejected for r in read),
        warnings=warnings,
        rejected_by_reason=dict(rejected),
        files=[o.report for o in outcomes],
    )


def data_object(file: DataFile) -> DataObject:
    return DataObject(
        key=file.key, size_bytes=file.size_bytes, rows=file.rows, source_key=file.source_key
    )


def landing_objects(
    store: ObjectStore, job: JobKey, allow_empty: bool = False
) -> tuple[list[ObjectInfo], list[str]]:
    """CSV objects under the job's landing prefix, in key order, and the keys ignored; none
    is NotFound unless `allow_empty` (a run that only forgets files)."""
    prefix = landing_prefix(job)
    found = sorted(store.list(prefix), key=lambda o: o.key)
    csvs = [o for o in found if o.key.lower().endswith(".csv")]
    ignored = [
        o.key for o in found if not o.key.lower().endswith(".csv") and not o.key.endswith("/")
    ]
    if not csvs and not allow_empty:
        detail = f" (found only: {', '.join(ignored[:5])})" if ignored else ""
        raise NotFound(f"no CSV objects under s3://{store.bucket}/{prefix}{detail}")
    return csvs, ignored


def ingest_file(
    store: ObjectStore,
    settings: Settings,
    plan: IngestPlan,
    info: ObjectInfo,
    writer: PartWriter,
    rejects: RejectWriter,
    audit: Audit,
    deadline: Deadline,
    reading: ReadProgress | None = None,
) -> FileOutcome:
    report = FileReport(key=info.key, etag=info.etag, size_bytes=info.size)
    sample = store.get_bytes(info.key, (0, SAMPLE_BYTES - 1)) if info.size else b""
    try:
        dialect, records = sniff(sample, plan.options, complete=len(sample) >= info.size)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{info.key}: {exc.message}") from None
    report.delimiter, report.quote, report.header = dialect.delimiter, dialect.quote, dialect.header
    report.encoding, report.bom = dialect.encoding, dialect.bom_bytes > 0
    report.line_terminator, report.sniffed = dialect.line_terminator, dialect.sniffed
    if not records:
        report.status = "EMPTY"
        return FileOutcome(report, warnings=[f"{info.key}: the file has no rows"])
    raw_names = records[0] if dialect.header else generated_column_names(len(records[0]))
    names, name_warnings = unique_column_names(raw_names)
    report.columns = list(names)
    outcome = FileOutcome(report, warnings=[f"{info.key}: {w}" for w in name_warnings])
    writer.start_source(info.key, info.etag)
    rejects.start_source(audit)

    def open_stream() -> contextlib.closing[IO[bytes]]:
        # Reads past the request's deadline fail, so a stalled store cannot hold the RPC.
        stream = store.open_stream(info.key, expires_at=deadline.ends)
        # PrefetchReader is a RawIOBase: a binary stream, though not nominally IO[bytes].
        return contextlib.closing(cast(IO[bytes], stream))

    block = settings.bronze_block_size_mb << 20
    batches = bronze_batches(
        open_stream,
        dialect,
        names,
        block,
        audit,
        plan.options.null_markers,
        max_field_bytes=settings.bronze_max_field_mb << 20,
    )
    parsed = 0  # CSV bytes of this file parsed so far, about (progress only)
    # Closed on the way out, whatever the way: that closes the stream being read.
    with contextlib.closing(batches):
        for batch in batches:
            deadline.check(f"ingesting {info.key}")
            if isinstance(batch, Restart):
                log.info("compatibility mode", extra={"key": info.key, "why": batch.reason[:200]})
                writer.discard_source(info.key)
                rejects.discard_source()
                if reading is not None:
                    reading.restart(report.rows)
                report.rows = parsed = 0
                outcome.warnings.append(
                    f"{info.key}: read with the compatibility parser ({batch.reason[:160]})"
                )
                continue
            rejects.add(batch.rejects)
            if batch.frame.height:
                report.rows += batch.frame.height
                writer.add(batch.frame, batch.raw_bytes)
            if reading is not None:
                parsed += batch.csv_bytes
                reading.read(min(parsed, info.size), batch.frame.height)
    outcome.rejected_by_kind = rejects.finish_source()
    report.rows_rejected = sum(outcome.rejected_by_kind.values())
    report.status = "INGESTED"
    if outcome.rejected_by_kind.get("invalid_encoding") and not plan.options.encoding:
        outcome.warnings.append(
            f"{info.key}: {outcome.rejected_by_kind['invalid_encoding']} rows hold bytes that "
            "are not UTF-8; set csv.encoding (for example latin-1) if the file uses another "
            "encoding"
        )
    return outcome


def union_columns(column_lists: list[list[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for columns in column_lists:
        for name in columns:
            seen.setdefault(name, None)
    return list(seen)


def input_record(report: FileReport) -> dict[str, object]:
    return {
        "key": report.key,
        "etag": report.etag,
        "size_bytes": report.size_bytes,
        "rows": report.rows,
        "rows_rejected": report.rows_rejected,
        "columns": report.columns,
    }


def skipped_report(info: ObjectInfo) -> FileReport:
    """A landing file the tables already hold with this ETag (its columns are in the
    table's schema; the file is not read)."""
    return FileReport(key=info.key, etag=info.etag, size_bytes=info.size, status="SKIPPED")
