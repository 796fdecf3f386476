"""What a layer reports about one run: FlowForge's own types, independent of the wire.

The cores of bronze, silver and gold return a LayerReport; the servicers turn it into the
proto `LayerResult` (flowforge/wire.py) and the orchestrator's clients turn the proto back.
The report is also what a commit stores for an idempotent replay, so it is versioned:
REPORT_VERSION grows when a field changes meaning, and `load_report` still reads older ones.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

REPORT_VERSION = 1


class _Report(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Column(_Report):
    name: str
    type: str


class DataObject(_Report):
    """One object a run wrote: a data part, rejects, quarantine or a model's output."""

    key: str
    size_bytes: int = 0
    rows: int = 0
    source_key: str = ""


class FileReport(_Report):
    """What bronze did with one landing object, including what it sniffed."""

    key: str
    etag: str = ""
    size_bytes: int = 0
    status: str = ""  # INGESTED, SKIPPED (already committed with this ETag) or EMPTY
    delimiter: str = ""
    quote: str = ""
    header: bool = False
    encoding: str = ""
    bom: bool = False
    line_terminator: str = ""
    sniffed: bool = False
    rows: int = 0
    rows_rejected: int = 0
    columns: list[str] = Field(default_factory=list)


class RuleResult(_Report):
    rule_id: str
    rule: str
    column: str
    action: str
    checked: int
    passed: int
    failed: int


class ColumnChange(_Report):
    name: str
    old_type: str
    new_type: str


class SchemaDrift(_Report):
    added: list[Column] = Field(default_factory=list)
    removed: list[Column] = Field(default_factory=list)
    retyped: list[ColumnChange] = Field(default_factory=list)


class DuplicateCount(_Report):
    key_count: int  # how many rows shared one key
    keys: int  # how many keys had that many rows
    rows_removed: int


class InputVersion(_Report):
    """One input a gold model read, at the version read (lineage)."""

    table: str
    version: int
    run_id: str = ""  # the run (execution) that committed that version
    job_id: str = ""  # for a silver table: its job
    dimension: str = ""  # for a dimension: its name


class ModelOutput(_Report):
    name: str
    key: str
    rows: int
    size_bytes: int
    columns: list[Column] = Field(default_factory=list)
    preview_json: str = "[]"  # the first rows as a JSON array of objects (bounded)
    table: str = ""  # the model's Delta table and the version committed
    version: int = 0
    status: str = ""  # workflow models: BUILT, SKIPPED (reason names the job) or FAILED
    reason: str = ""
    inputs: list[InputVersion] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    seconds: float = 0.0


class LayerReport(_Report):
    """What one run of a layer committed (or, when `reused`, had committed before)."""

    report_version: int = REPORT_VERSION
    layer: str
    workflow_id: str
    job_id: str
    run_id: str
    manifest_key: str = ""
    output_prefix: str = ""
    data_objects: list[DataObject] = Field(default_factory=list)
    reject_objects: list[DataObject] = Field(default_factory=list)
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    total_rows: int = 0
    columns: list[Column] = Field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list)
    reused: bool = False
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    input_run_id: str = ""
    # The main table and the version committed (or found, when reused); the upstream
    # table's version read (and, for an incremental silver run, the first version of the
    # changes it read); the side table (rejects, quarantine) and its version.
    table: str = ""
    table_version: int | None = None
    input_version: int | None = None
    input_from_version: int | None = None
    side_table: str = ""
    side_version: int | None = None
    # bronze
    files: list[FileReport] = Field(default_factory=list)
    # silver
    duplicates_removed: int = 0
    duplicates: list[DuplicateCount] = Field(default_factory=list)
    quality: list[RuleResult] = Field(default_factory=list)
    drift: SchemaDrift | None = None
    refresh: str = ""  # incremental | full
    refresh_reason: str = ""
    # gold
    models: list[ModelOutput] = Field(default_factory=list)

    def stored(self) -> dict[str, Any]:
        """The JSON form a commit keeps, to replay the run."""
        return self.model_dump(mode="json")


def load_report(data: dict[str, Any]) -> LayerReport:
    """A stored report of any version: version 1 and later as written; before versions
    existed, commits stored the proto LayerResult's JSON (camelCase names)."""
    if "report_version" in data:
        return LayerReport.model_validate(data)
    from flowforge.wire import report_from_stored_proto

    return report_from_stored_proto(data)
