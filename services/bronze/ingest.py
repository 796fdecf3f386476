"""Bronze ingest: landing CSV objects in, raw-text Parquet parts and rejects out, committed."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, cast

from flowforge.bronze_columns import bronze_schema
from flowforge.errors import InvalidArgument, NotFound
from flowforge.layout import Dataset, JobKey, landing_prefix
from flowforge.manifest import (
    Manifest,
    ManifestColumn,
    ManifestObject,
    commit,
    read_committed,
    start_run,
)
from flowforge.parts import PartWriter, write_parquet
from flowforge.reports import Column, FileReport, LayerReport
from flowforge.results import data_object, finish, replay
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.storage import ObjectInfo, ObjectStore
from services.bronze.convert import bronze_batches
from services.bronze.options import CsvOptions
from services.bronze.parse import Restart
from services.bronze.rows import Reject
from services.bronze.sniff import SAMPLE_BYTES, sniff
from services.bronze.transform import (
    Audit,
    generated_column_names,
    rejects_frame,
    unique_column_names,
)

log = logging.getLogger(__name__)

REJECTS_PER_OBJECT = 100_000


@dataclass(frozen=True)
class IngestPlan:
    job: JobKey
    run_id: str
    options: CsvOptions
    full_refresh: bool = False


@dataclass
class FileOutcome:
    report: FileReport
    columns: list[str] = field(default_factory=list)
    rejects: list[ManifestObject] = field(default_factory=list)
    rejected_by_kind: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)


def ingest(
    store: ObjectStore, settings: Settings, plan: IngestPlan, deadline: Deadline
) -> LayerReport:
    started = time.monotonic()
    dataset = Dataset.for_layer("bronze", plan.job)
    previous = read_committed(store, dataset)
    if previous is not None and previous.manifest.run_id == plan.run_id:
        return replay(previous)
    landing, ignored = landing_objects(store, plan.job)
    committed_inputs = (
        {}
        if plan.full_refresh or previous is None
        else {i["key"]: i for i in previous.manifest.inputs.get("landing", [])}
    )
    run_prefix = start_run(store, dataset, plan.run_id, previous)
    ingested_at = datetime.now(UTC)
    writer = PartWriter(store, run_prefix, settings.bronze_part_target_mb << 20)
    outcomes: list[FileOutcome] = []
    inputs: list[dict[str, object]] = []
    try:
        for index, info in enumerate(landing):
            deadline.check(f"ingesting {info.key}")
            done = committed_inputs.get(info.key)
            if done is not None and done.get("etag") == info.etag:
                outcomes.append(FileOutcome(skipped_report(info, done)))
                inputs.append(done)
                continue
            audit = Audit(
                ingested_at, info.key, info.etag, plan.run_id, plan.job.workflow_id, plan.job.job_id
            )
            outcome = ingest_file(
                store, settings, plan, info, index, run_prefix, writer, audit, deadline
            )
            outcomes.append(outcome)
            inputs.append(input_record(outcome.report, outcome.columns))
        new_parts = writer.close()
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()
        raise

    reingested = {o.report.key for o in outcomes if o.report.status != "SKIPPED"}
    kept_parts, kept_rejects, kept_inputs = [], [], []
    if previous is not None and not plan.full_refresh:
        kept_parts = [o for o in previous.manifest.data_objects if o.source_key not in reingested]
        kept_rejects = [
            o for o in previous.manifest.reject_objects if o.source_key not in reingested
        ]
        current = {i["key"] for i in inputs}
        kept_inputs = [
            i for i in previous.manifest.inputs.get("landing", []) if i["key"] not in current
        ]
    new_rejects = [r for o in outcomes for r in o.rejects]
    all_inputs = kept_inputs + inputs
    columns = union_columns([list(i.get("columns", [])) for i in all_inputs])
    schema = bronze_schema(columns)
    manifest = Manifest(
        dataset=dataset.prefix,
        run_id=plan.run_id,
        data_objects=kept_parts + new_parts,
        reject_objects=kept_rejects + new_rejects,
        columns=[ManifestColumn(name=n, type=str(t)) for n, t in schema.items()],
        inputs={"landing": all_inputs},
    )
    rejected = Counter[str]()
    for outcome in outcomes:
        rejected.update(outcome.rejected_by_kind)
    warnings = [w for o in outcomes for w in o.warnings]
    warnings += [f"ignored {key}: not a .csv object" for key in ignored]
    result = LayerReport(
        layer="bronze",
        workflow_id=plan.job.workflow_id,
        job_id=plan.job.job_id,
        run_id=plan.run_id,
        manifest_key=dataset.manifest_key,
        output_prefix=run_prefix,
        data_objects=[data_object(o) for o in manifest.data_objects],
        reject_objects=[data_object(o) for o in new_rejects],
        rows_in=sum(
            o.report.rows + o.report.rows_rejected for o in outcomes if o.report.status != "SKIPPED"
        ),
        rows_out=sum(o.report.rows for o in outcomes if o.report.status != "SKIPPED"),
        rows_rejected=sum(o.report.rows_rejected for o in outcomes if o.report.status != "SKIPPED"),
        total_rows=manifest.total_rows,
        columns=[Column(name=c.name, type=c.type) for c in manifest.columns],
        warnings=warnings,
        rejected_by_reason=dict(rejected),
        files=[o.report for o in outcomes],
    )
    finish(result, manifest, started)
    deadline.check("committing")  # a caller that gave up must not see a late commit
    commit(store, dataset, manifest, previous)
    return result


def landing_objects(store: ObjectStore, job: JobKey) -> tuple[list[ObjectInfo], list[str]]:
    """CSV objects under the job's landing prefix, in key order, and the keys ignored."""
    prefix = landing_prefix(job)
    found = sorted(store.list(prefix), key=lambda o: o.key)
    csvs = [o for o in found if o.key.lower().endswith(".csv")]
    ignored = [
        o.key for o in found if not o.key.lower().endswith(".csv") and not o.key.endswith("/")
    ]
    if not csvs:
        detail = f" (found only: {', '.join(ignored[:5])})" if ignored else ""
        raise NotFound(f"no CSV objects under s3://{store.bucket}/{prefix}{detail}")
    return csvs, ignored


def ingest_file(
    store: ObjectStore,
    settings: Settings,
    plan: IngestPlan,
    info: ObjectInfo,
    index: int,
    run_prefix: str,
    writer: PartWriter,
    audit: Audit,
    deadline: Deadline,
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
    outcome = FileOutcome(
        report, columns=names, warnings=[f"{info.key}: {w}" for w in name_warnings]
    )
    writer.start_source(f"part-{index:05d}", info.key, info.etag)
    rejects = RejectWriter(store, f"{run_prefix}_rejects/part-{index:05d}", audit)

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
    # Closed on the way out, whatever the way: that closes the stream being read.
    with contextlib.closing(batches):
        for batch in batches:
            deadline.check(f"ingesting {info.key}")
            if isinstance(batch, Restart):
                log.info("compatibility mode", extra={"key": info.key, "why": batch.reason[:200]})
                writer.discard_source(info.key)
                rejects.discard()
                report.rows = 0
                outcome.warnings.append(
                    f"{info.key}: read with the compatibility parser ({batch.reason[:160]})"
                )
                continue
            rejects.add(batch.rejects)
            if batch.frame.height:
                report.rows += batch.frame.height
                writer.add(batch.frame, batch.raw_bytes)
    outcome.rejects = rejects.close()
    outcome.rejected_by_kind = rejects.kinds
    report.rows_rejected = sum(rejects.kinds.values())
    report.status = "INGESTED"
    if rejects.kinds.get("invalid_encoding") and not plan.options.encoding:
        outcome.warnings.append(
            f"{info.key}: {rejects.kinds['invalid_encoding']} rows hold bytes that are not UTF-8; "
            "set csv.encoding (for example latin-1) if the file uses another encoding"
        )
    return outcome


class RejectWriter:
    """Writes rejected rows, in row order, in objects of at most REJECTS_PER_OBJECT rows."""

    def __init__(self, store: ObjectStore, key_stem: str, audit: Audit) -> None:
        self._store, self._stem, self._audit = store, key_stem, audit
        self._pending: list[Reject] = []
        self.kinds = Counter[str]()
        self.written: list[ManifestObject] = []

    def add(self, rejects: list[Reject]) -> None:
        self._pending.extend(rejects)
        self.kinds.update(r.kind for r in rejects)
        if len(self._pending) >= REJECTS_PER_OBJECT:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        frame = rejects_frame(sorted(self._pending, key=lambda r: r.row_number), self._audit)
        key = f"{self._stem}-{len(self.written):05d}.parquet"
        self.written.append(
            write_parquet(self._store, key, frame, self._audit.source_key, self._audit.source_etag)
        )
        self._pending = []

    def discard(self) -> None:
        self._store.delete_keys(o.key for o in self.written)
        self._pending, self.written, self.kinds = [], [], Counter()

    def close(self) -> list[ManifestObject]:
        self._flush()
        return self.written


def union_columns(column_lists: list[list[str]]) -> list[str]:
    seen: dict[str, None] = {}
    for columns in column_lists:
        for name in columns:
            seen.setdefault(name, None)
    return list(seen)


def input_record(report: FileReport, columns: list[str]) -> dict[str, object]:
    return {
        "key": report.key,
        "etag": report.etag,
        "size_bytes": report.size_bytes,
        "rows": report.rows,
        "rows_rejected": report.rows_rejected,
        "columns": columns,
    }


def skipped_report(info: ObjectInfo, done: dict[str, object]) -> FileReport:
    return FileReport(
        key=info.key,
        etag=info.etag,
        size_bytes=info.size,
        status="SKIPPED",
        columns=[str(c) for c in done.get("columns", [])],  # type: ignore[attr-defined]
    )
