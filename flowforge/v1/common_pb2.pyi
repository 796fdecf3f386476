import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobRef(_message.Message):
    __slots__ = ("workflow_id", "job_id")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    job_id: str
    def __init__(self, workflow_id: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class DataObject(_message.Message):
    __slots__ = ("key", "size_bytes", "rows", "source_key")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    size_bytes: int
    rows: int
    source_key: str
    def __init__(self, key: _Optional[str] = ..., size_bytes: _Optional[int] = ..., rows: _Optional[int] = ..., source_key: _Optional[str] = ...) -> None: ...

class Column(_message.Message):
    __slots__ = ("name", "type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class FileReport(_message.Message):
    __slots__ = ("key", "etag", "size_bytes", "status", "delimiter", "quote", "header", "encoding", "bom", "line_terminator", "sniffed", "rows", "rows_rejected", "columns")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DELIMITER_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    BOM_FIELD_NUMBER: _ClassVar[int]
    LINE_TERMINATOR_FIELD_NUMBER: _ClassVar[int]
    SNIFFED_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ROWS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    key: str
    etag: str
    size_bytes: int
    status: str
    delimiter: str
    quote: str
    header: bool
    encoding: str
    bom: bool
    line_terminator: str
    sniffed: bool
    rows: int
    rows_rejected: int
    columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key: _Optional[str] = ..., etag: _Optional[str] = ..., size_bytes: _Optional[int] = ..., status: _Optional[str] = ..., delimiter: _Optional[str] = ..., quote: _Optional[str] = ..., header: _Optional[bool] = ..., encoding: _Optional[str] = ..., bom: _Optional[bool] = ..., line_terminator: _Optional[str] = ..., sniffed: _Optional[bool] = ..., rows: _Optional[int] = ..., rows_rejected: _Optional[int] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...

class RuleResult(_message.Message):
    __slots__ = ("rule_id", "rule", "column", "action", "checked", "passed", "failed")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CHECKED_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    rule: str
    column: str
    action: str
    checked: int
    passed: int
    failed: int
    def __init__(self, rule_id: _Optional[str] = ..., rule: _Optional[str] = ..., column: _Optional[str] = ..., action: _Optional[str] = ..., checked: _Optional[int] = ..., passed: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class ColumnChange(_message.Message):
    __slots__ = ("name", "old_type", "new_type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OLD_TYPE_FIELD_NUMBER: _ClassVar[int]
    NEW_TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    old_type: str
    new_type: str
    def __init__(self, name: _Optional[str] = ..., old_type: _Optional[str] = ..., new_type: _Optional[str] = ...) -> None: ...

class SchemaDrift(_message.Message):
    __slots__ = ("added", "removed", "retyped")
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    RETYPED_FIELD_NUMBER: _ClassVar[int]
    added: _containers.RepeatedCompositeFieldContainer[Column]
    removed: _containers.RepeatedCompositeFieldContainer[Column]
    retyped: _containers.RepeatedCompositeFieldContainer[ColumnChange]
    def __init__(self, added: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., removed: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., retyped: _Optional[_Iterable[_Union[ColumnChange, _Mapping]]] = ...) -> None: ...

class DuplicateCount(_message.Message):
    __slots__ = ("key_count", "keys", "rows_removed")
    KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    ROWS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    key_count: int
    keys: int
    rows_removed: int
    def __init__(self, key_count: _Optional[int] = ..., keys: _Optional[int] = ..., rows_removed: _Optional[int] = ...) -> None: ...

class InputVersion(_message.Message):
    __slots__ = ("table", "version", "run_id", "job_id", "dimension")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    table: str
    version: int
    run_id: str
    job_id: str
    dimension: str
    def __init__(self, table: _Optional[str] = ..., version: _Optional[int] = ..., run_id: _Optional[str] = ..., job_id: _Optional[str] = ..., dimension: _Optional[str] = ...) -> None: ...

class ModelOutput(_message.Message):
    __slots__ = ("name", "key", "rows", "size_bytes", "schema", "preview_json", "table", "version", "status", "reason", "inputs", "depends_on", "seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_JSON_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    key: str
    rows: int
    size_bytes: int
    schema: _containers.RepeatedCompositeFieldContainer[Column]
    preview_json: str
    table: str
    version: int
    status: str
    reason: str
    inputs: _containers.RepeatedCompositeFieldContainer[InputVersion]
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    seconds: float
    def __init__(self, name: _Optional[str] = ..., key: _Optional[str] = ..., rows: _Optional[int] = ..., size_bytes: _Optional[int] = ..., schema: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., preview_json: _Optional[str] = ..., table: _Optional[str] = ..., version: _Optional[int] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[InputVersion, _Mapping]]] = ..., depends_on: _Optional[_Iterable[str]] = ..., seconds: _Optional[float] = ...) -> None: ...

class LayerResult(_message.Message):
    __slots__ = ("layer", "job", "run_id", "manifest_key", "output_prefix", "data_objects", "rows_in", "rows_out", "rows_rejected", "schema", "duration", "warnings", "reject_objects", "reused", "total_rows", "rejected_by_reason", "files", "duplicates_removed", "duplicates", "quality", "drift", "models", "input_run_id", "table", "table_version", "input_version", "side_table", "side_version", "refresh", "refresh_reason", "input_from_version")
    class RejectedByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    LAYER_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_KEY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    DATA_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    ROWS_IN_FIELD_NUMBER: _ClassVar[int]
    ROWS_OUT_FIELD_NUMBER: _ClassVar[int]
    ROWS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    REJECT_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    INPUT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    TABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SIDE_TABLE_FIELD_NUMBER: _ClassVar[int]
    SIDE_VERSION_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    REFRESH_REASON_FIELD_NUMBER: _ClassVar[int]
    INPUT_FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    layer: str
    job: JobRef
    run_id: str
    manifest_key: str
    output_prefix: str
    data_objects: _containers.RepeatedCompositeFieldContainer[DataObject]
    rows_in: int
    rows_out: int
    rows_rejected: int
    schema: _containers.RepeatedCompositeFieldContainer[Column]
    duration: _duration_pb2.Duration
    warnings: _containers.RepeatedScalarFieldContainer[str]
    reject_objects: _containers.RepeatedCompositeFieldContainer[DataObject]
    reused: bool
    total_rows: int
    rejected_by_reason: _containers.ScalarMap[str, int]
    files: _containers.RepeatedCompositeFieldContainer[FileReport]
    duplicates_removed: int
    duplicates: _containers.RepeatedCompositeFieldContainer[DuplicateCount]
    quality: _containers.RepeatedCompositeFieldContainer[RuleResult]
    drift: SchemaDrift
    models: _containers.RepeatedCompositeFieldContainer[ModelOutput]
    input_run_id: str
    table: str
    table_version: int
    input_version: int
    side_table: str
    side_version: int
    refresh: str
    refresh_reason: str
    input_from_version: int
    def __init__(self, layer: _Optional[str] = ..., job: _Optional[_Union[JobRef, _Mapping]] = ..., run_id: _Optional[str] = ..., manifest_key: _Optional[str] = ..., output_prefix: _Optional[str] = ..., data_objects: _Optional[_Iterable[_Union[DataObject, _Mapping]]] = ..., rows_in: _Optional[int] = ..., rows_out: _Optional[int] = ..., rows_rejected: _Optional[int] = ..., schema: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ..., reject_objects: _Optional[_Iterable[_Union[DataObject, _Mapping]]] = ..., reused: _Optional[bool] = ..., total_rows: _Optional[int] = ..., rejected_by_reason: _Optional[_Mapping[str, int]] = ..., files: _Optional[_Iterable[_Union[FileReport, _Mapping]]] = ..., duplicates_removed: _Optional[int] = ..., duplicates: _Optional[_Iterable[_Union[DuplicateCount, _Mapping]]] = ..., quality: _Optional[_Iterable[_Union[RuleResult, _Mapping]]] = ..., drift: _Optional[_Union[SchemaDrift, _Mapping]] = ..., models: _Optional[_Iterable[_Union[ModelOutput, _Mapping]]] = ..., input_run_id: _Optional[str] = ..., table: _Optional[str] = ..., table_version: _Optional[int] = ..., input_version: _Optional[int] = ..., side_table: _Optional[str] = ..., side_version: _Optional[int] = ..., refresh: _Optional[str] = ..., refresh_reason: _Optional[str] = ..., input_from_version: _Optional[int] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("job", "run_id")
    JOB_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    job: JobRef
    run_id: str
    def __init__(self, job: _Optional[_Union[JobRef, _Mapping]] = ..., run_id: _Optional[str] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("run_id", "layer", "job", "phase", "bytes_read", "bytes_total", "rows", "rows_total", "files_done", "files_total", "models_done", "models_total", "done", "failed")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LAYER_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    BYTES_READ_FIELD_NUMBER: _ClassVar[int]
    BYTES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ROWS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FILES_DONE_FIELD_NUMBER: _ClassVar[int]
    FILES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MODELS_DONE_FIELD_NUMBER: _ClassVar[int]
    MODELS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    layer: str
    job: JobRef
    phase: str
    bytes_read: int
    bytes_total: int
    rows: int
    rows_total: int
    files_done: int
    files_total: int
    models_done: int
    models_total: int
    done: bool
    failed: bool
    def __init__(self, run_id: _Optional[str] = ..., layer: _Optional[str] = ..., job: _Optional[_Union[JobRef, _Mapping]] = ..., phase: _Optional[str] = ..., bytes_read: _Optional[int] = ..., bytes_total: _Optional[int] = ..., rows: _Optional[int] = ..., rows_total: _Optional[int] = ..., files_done: _Optional[int] = ..., files_total: _Optional[int] = ..., models_done: _Optional[int] = ..., models_total: _Optional[int] = ..., done: _Optional[bool] = ..., failed: _Optional[bool] = ...) -> None: ...
