"""LayerReport <-> the proto LayerResult, and a run's progress Snapshot <-> the proto
Progress: the one place reports meet the wire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from google.protobuf import json_format

from flowforge.progress import Snapshot
from flowforge.reports import (
    Column,
    ColumnChange,
    DataObject,
    DuplicateCount,
    FileReport,
    InputVersion,
    LayerReport,
    ModelOutput,
    RuleResult,
    SchemaDrift,
)
from flowforge.v1 import common_pb2


def to_proto(report: LayerReport) -> common_pb2.LayerResult:
    result = common_pb2.LayerResult(
        layer=report.layer,
        job=common_pb2.JobRef(workflow_id=report.workflow_id, job_id=report.job_id),
        run_id=report.run_id,
        manifest_key=report.manifest_key,
        output_prefix=report.output_prefix,
        data_objects=[_object(o) for o in report.data_objects],
        reject_objects=[_object(o) for o in report.reject_objects],
        rows_in=report.rows_in,
        rows_out=report.rows_out,
        rows_rejected=report.rows_rejected,
        total_rows=report.total_rows,
        schema=[_column(c) for c in report.columns],
        warnings=report.warnings,
        reused=report.reused,
        rejected_by_reason=report.rejected_by_reason,
        input_run_id=report.input_run_id,
        table=report.table,
        table_version=report.table_version,
        input_version=report.input_version,
        input_from_version=report.input_from_version,
        side_table=report.side_table,
        side_version=report.side_version,
        refresh=report.refresh,
        refresh_reason=report.refresh_reason,
        files=[common_pb2.FileReport(**f.model_dump()) for f in report.files],
        duplicates_removed=report.duplicates_removed,
        duplicates=[common_pb2.DuplicateCount(**d.model_dump()) for d in report.duplicates],
        quality=[common_pb2.RuleResult(**r.model_dump()) for r in report.quality],
        models=[
            common_pb2.ModelOutput(
                name=m.name,
                key=m.key,
                rows=m.rows,
                size_bytes=m.size_bytes,
                schema=[_column(c) for c in m.columns],
                preview_json=m.preview_json,
                table=m.table,
                version=m.version,
                status=m.status,
                reason=m.reason,
                inputs=[common_pb2.InputVersion(**i.model_dump()) for i in m.inputs],
                depends_on=m.depends_on,
                seconds=m.seconds,
            )
            for m in report.models
        ],
    )
    result.duration.FromTimedelta(timedelta(seconds=report.seconds))
    if report.drift is not None:
        result.drift.CopyFrom(
            common_pb2.SchemaDrift(
                added=[_column(c) for c in report.drift.added],
                removed=[_column(c) for c in report.drift.removed],
                retyped=[common_pb2.ColumnChange(**c.model_dump()) for c in report.drift.retyped],
            )
        )
    return result


def from_proto(result: common_pb2.LayerResult) -> LayerReport:
    return LayerReport(
        layer=result.layer,
        workflow_id=result.job.workflow_id,
        job_id=result.job.job_id,
        run_id=result.run_id,
        manifest_key=result.manifest_key,
        output_prefix=result.output_prefix,
        data_objects=[_object_from(o) for o in result.data_objects],
        reject_objects=[_object_from(o) for o in result.reject_objects],
        rows_in=result.rows_in,
        rows_out=result.rows_out,
        rows_rejected=result.rows_rejected,
        total_rows=result.total_rows,
        columns=[Column(name=c.name, type=c.type) for c in result.schema],
        seconds=result.duration.ToTimedelta().total_seconds(),
        warnings=list(result.warnings),
        reused=result.reused,
        rejected_by_reason=dict(result.rejected_by_reason),
        input_run_id=result.input_run_id,
        table=result.table,
        table_version=result.table_version if result.HasField("table_version") else None,
        input_version=result.input_version if result.HasField("input_version") else None,
        input_from_version=(
            result.input_from_version if result.HasField("input_from_version") else None
        ),
        side_table=result.side_table,
        side_version=result.side_version if result.HasField("side_version") else None,
        refresh=result.refresh,
        refresh_reason=result.refresh_reason,
        files=[FileReport.model_validate(_fields(f)) for f in result.files],
        duplicates_removed=result.duplicates_removed,
        duplicates=[DuplicateCount.model_validate(_fields(d)) for d in result.duplicates],
        quality=[RuleResult.model_validate(_fields(r)) for r in result.quality],
        drift=(
            SchemaDrift(
                added=[Column(name=c.name, type=c.type) for c in result.drift.added],
                removed=[Column(name=c.name, type=c.type) for c in result.drift.removed],
                retyped=[ColumnChange.model_validate(_fields(c)) for c in result.drift.retyped],
            )
            if result.HasField("drift")
            else None
        ),
        models=[
            ModelOutput(
                name=m.name,
                key=m.key,
                rows=m.rows,
                size_bytes=m.size_bytes,
                columns=[Column(name=c.name, type=c.type) for c in m.schema],
                preview_json=m.preview_json or "[]",
                table=m.table,
                version=m.version,
                status=m.status,
                reason=m.reason,
                inputs=[InputVersion.model_validate(_fields(i)) for i in m.inputs],
                depends_on=list(m.depends_on),
                seconds=m.seconds,
            )
            for m in result.models
        ],
    )


def report_from_stored_proto(data: dict[str, Any]) -> LayerReport:
    """A commit written before reports were versioned stored the proto's JSON."""
    message = json_format.ParseDict(data, common_pb2.LayerResult(), ignore_unknown_fields=True)
    return from_proto(message)


def _fields(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _object(obj: DataObject) -> common_pb2.DataObject:
    return common_pb2.DataObject(**obj.model_dump())


def _object_from(obj: common_pb2.DataObject) -> DataObject:
    return DataObject(
        key=obj.key, size_bytes=obj.size_bytes, rows=obj.rows, source_key=obj.source_key
    )


def _column(column: Column) -> common_pb2.Column:
    return common_pb2.Column(name=column.name, type=column.type)


def log_fields(request: Any, result: common_pb2.LayerResult | None) -> dict[str, Any]:
    """The fields of a layer RPC's one log line: which job and run, and what it did."""
    fields: dict[str, Any] = {
        "workflow_id": request.job.workflow_id[:64],
        "job_id": request.job.job_id[:64],
        "run_id": (result.run_id if result else request.run_id)[:64],
    }
    if result is not None:
        fields.update(
            rows_in=result.rows_in,
            rows_out=result.rows_out,
            rows_rejected=result.rows_rejected,
            reused=result.reused,
        )
        if result.layer == "silver":
            fields.update(
                duplicates_removed=result.duplicates_removed,
                input_run_id=result.input_run_id,
                refresh=result.refresh,
            )
        if result.layer == "gold":
            fields["models"] = [m.name[:64] for m in result.models][:50]
    return fields


def progress_to_proto(snapshot: Snapshot) -> common_pb2.Progress:
    return common_pb2.Progress(
        run_id=snapshot.run_id,
        layer=snapshot.layer,
        job=common_pb2.JobRef(workflow_id=snapshot.workflow_id, job_id=snapshot.job_id),
        done=snapshot.done,
        failed=snapshot.failed,
        **snapshot.counts(),
    )


def progress_from_proto(message: common_pb2.Progress) -> dict[str, Any]:
    """The phase and counts of a Progress message as plain values; a total of 0 (unknown)
    and counts a layer does not report (0 with no total) are left out."""
    counts: dict[str, Any] = {"phase": message.phase}
    for done, total in (
        ("bytes_read", "bytes_total"),
        ("rows", "rows_total"),
        ("files_done", "files_total"),
        ("models_done", "models_total"),
    ):
        if getattr(message, total):
            counts[total] = getattr(message, total)
        if getattr(message, done) or getattr(message, total) or done == "rows":
            counts[done] = getattr(message, done)
    return counts
