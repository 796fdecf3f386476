from flowforge.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CsvOptions(_message.Message):
    __slots__ = ("delimiter", "quote", "escape", "header", "encoding", "null_markers")
    DELIMITER_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    ESCAPE_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    NULL_MARKERS_FIELD_NUMBER: _ClassVar[int]
    delimiter: str
    quote: str
    escape: str
    header: bool
    encoding: str
    null_markers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, delimiter: _Optional[str] = ..., quote: _Optional[str] = ..., escape: _Optional[str] = ..., header: _Optional[bool] = ..., encoding: _Optional[str] = ..., null_markers: _Optional[_Iterable[str]] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("job", "run_id", "csv", "full_refresh", "forget")
    JOB_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CSV_FIELD_NUMBER: _ClassVar[int]
    FULL_REFRESH_FIELD_NUMBER: _ClassVar[int]
    FORGET_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.JobRef
    run_id: str
    csv: CsvOptions
    full_refresh: bool
    forget: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job: _Optional[_Union[_common_pb2.JobRef, _Mapping]] = ..., run_id: _Optional[str] = ..., csv: _Optional[_Union[CsvOptions, _Mapping]] = ..., full_refresh: _Optional[bool] = ..., forget: _Optional[_Iterable[str]] = ...) -> None: ...
