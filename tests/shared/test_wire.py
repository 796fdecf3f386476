"""A LayerReport survives the wire: to_proto then from_proto gives it back, every field set;
a report stored before reports were versioned (the proto's JSON) still reads."""

from __future__ import annotations

from google.protobuf import json_format

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
    load_report,
)
from flowforge.wire import from_proto, to_proto


def full_report() -> LayerReport:
    """A report with every field away from its default (so a dropped field shows)."""
    return LayerReport(
        layer="silver",
        workflow_id="w",
        job_id="j",
        run_id="r1",
        manifest_key="silver/w/j/_delta_log/00000000000000000003.json",
        output_prefix="silver/w/j/",
        data_objects=[DataObject(key="a", size_bytes=3, rows=2, source_key="s")],
        reject_objects=[DataObject(key="b", size_bytes=1, rows=1)],
        rows_in=10,
        rows_out=7,
        rows_rejected=2,
        total_rows=70,
        columns=[Column(name="id", type="Int64")],
        seconds=1.5,
        warnings=["careful"],
        rejected_by_reason={"cast_id": 2},
        input_run_id="r0",
        table="silver/w/j",
        table_version=3,
        input_version=9,
        input_from_version=8,
        side_table="silver/w/_quarantine/j",
        side_version=2,
        files=[FileReport(key="k", etag="e", rows=4, columns=["a", "b"], header=True)],
        duplicates_removed=1,
        duplicates=[DuplicateCount(key_count=2, keys=1, rows_removed=1)],
        quality=[
            RuleResult(
                rule_id="x",
                rule="unique",
                column="id",
                action="warn",
                checked=9,
                passed=8,
                failed=1,
            )
        ],
        drift=SchemaDrift(
            added=[Column(name="n", type="String")],
            retyped=[ColumnChange(name="id", old_type="String", new_type="Int64")],
        ),
        refresh="incremental",
        refresh_reason="only appends since bronze version 8",
        models=[
            ModelOutput(
                name="m",
                key="k",
                rows=1,
                size_bytes=9,
                columns=[Column(name="n", type="BIGINT")],
                preview_json='[{"n": 1}]',
                table="gold/w/j/m",
                version=4,
                status="BUILT",
                reason="r",
                inputs=[
                    InputVersion(table="silver/w/j", version=3, run_id="r0", job_id="j"),
                    InputVersion(table="dimensions/c", version=1, dimension="c"),
                ],
                depends_on=["n"],
            )
        ],
    )


def test_a_report_survives_the_wire() -> None:
    report = full_report()
    assert from_proto(to_proto(report)) == report


def test_a_report_stored_as_the_protos_json_still_reads() -> None:
    report = full_report()
    stored_by_older_code = json_format.MessageToDict(to_proto(report))
    assert "report_version" not in stored_by_older_code
    assert load_report(stored_by_older_code) == report
    assert load_report(report.stored()) == report
