from flowforge.v1 import common_pb2 as _common_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ColumnSpec(_message.Message):
    __slots__ = ("source", "target", "type", "formats", "trim", "case", "null_markers", "null_markers_set", "required", "decimal_separator", "thousands_separator", "locale")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FORMATS_FIELD_NUMBER: _ClassVar[int]
    TRIM_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    NULL_MARKERS_FIELD_NUMBER: _ClassVar[int]
    NULL_MARKERS_SET_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    DECIMAL_SEPARATOR_FIELD_NUMBER: _ClassVar[int]
    THOUSANDS_SEPARATOR_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    type: str
    formats: _containers.RepeatedScalarFieldContainer[str]
    trim: bool
    case: str
    null_markers: _containers.RepeatedScalarFieldContainer[str]
    null_markers_set: bool
    required: bool
    decimal_separator: str
    thousands_separator: str
    locale: str
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ..., type: _Optional[str] = ..., formats: _Optional[_Iterable[str]] = ..., trim: _Optional[bool] = ..., case: _Optional[str] = ..., null_markers: _Optional[_Iterable[str]] = ..., null_markers_set: _Optional[bool] = ..., required: _Optional[bool] = ..., decimal_separator: _Optional[str] = ..., thousands_separator: _Optional[str] = ..., locale: _Optional[str] = ...) -> None: ...

class Expectation(_message.Message):
    __slots__ = ("id", "type", "column", "values", "min", "max", "pattern", "min_length", "max_length", "action", "max_bad_percent")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    MIN_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MAX_BAD_PERCENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    column: str
    values: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    min: _struct_pb2.Value
    max: _struct_pb2.Value
    pattern: str
    min_length: int
    max_length: int
    action: str
    max_bad_percent: float
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., column: _Optional[str] = ..., values: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ..., min: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., max: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., pattern: _Optional[str] = ..., min_length: _Optional[int] = ..., max_length: _Optional[int] = ..., action: _Optional[str] = ..., max_bad_percent: _Optional[float] = ...) -> None: ...

class Dedupe(_message.Message):
    __slots__ = ("keys", "sequence_by", "tie_breaker", "history")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_BY_FIELD_NUMBER: _ClassVar[int]
    TIE_BREAKER_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[str]
    sequence_by: str
    tie_breaker: str
    history: str
    def __init__(self, keys: _Optional[_Iterable[str]] = ..., sequence_by: _Optional[str] = ..., tie_breaker: _Optional[str] = ..., history: _Optional[str] = ...) -> None: ...

class SilverSpec(_message.Message):
    __slots__ = ("columns", "expectations", "dedupe", "fail_on_schema_drift", "max_bad_percent")
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    EXPECTATIONS_FIELD_NUMBER: _ClassVar[int]
    DEDUPE_FIELD_NUMBER: _ClassVar[int]
    FAIL_ON_SCHEMA_DRIFT_FIELD_NUMBER: _ClassVar[int]
    MAX_BAD_PERCENT_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedCompositeFieldContainer[ColumnSpec]
    expectations: _containers.RepeatedCompositeFieldContainer[Expectation]
    dedupe: Dedupe
    fail_on_schema_drift: bool
    max_bad_percent: float
    def __init__(self, columns: _Optional[_Iterable[_Union[ColumnSpec, _Mapping]]] = ..., expectations: _Optional[_Iterable[_Union[Expectation, _Mapping]]] = ..., dedupe: _Optional[_Union[Dedupe, _Mapping]] = ..., fail_on_schema_drift: _Optional[bool] = ..., max_bad_percent: _Optional[float] = ...) -> None: ...

class RefineRequest(_message.Message):
    __slots__ = ("job", "run_id", "spec", "full_refresh")
    JOB_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    FULL_REFRESH_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.JobRef
    run_id: str
    spec: SilverSpec
    full_refresh: bool
    def __init__(self, job: _Optional[_Union[_common_pb2.JobRef, _Mapping]] = ..., run_id: _Optional[str] = ..., spec: _Optional[_Union[SilverSpec, _Mapping]] = ..., full_refresh: _Optional[bool] = ...) -> None: ...
