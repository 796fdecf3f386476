from flowforge.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Model(_message.Message):
    __slots__ = ("name", "sql")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SQL_FIELD_NUMBER: _ClassVar[int]
    name: str
    sql: str
    def __init__(self, name: _Optional[str] = ..., sql: _Optional[str] = ...) -> None: ...

class GoldSpec(_message.Message):
    __slots__ = ("models", "dimensions", "skip_profile", "preview_rows")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    SKIP_PROFILE_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_ROWS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    dimensions: _containers.RepeatedScalarFieldContainer[str]
    skip_profile: bool
    preview_rows: int
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., dimensions: _Optional[_Iterable[str]] = ..., skip_profile: _Optional[bool] = ..., preview_rows: _Optional[int] = ...) -> None: ...

class BuildRequest(_message.Message):
    __slots__ = ("job", "run_id", "spec")
    JOB_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    job: _common_pb2.JobRef
    run_id: str
    spec: GoldSpec
    def __init__(self, job: _Optional[_Union[_common_pb2.JobRef, _Mapping]] = ..., run_id: _Optional[str] = ..., spec: _Optional[_Union[GoldSpec, _Mapping]] = ...) -> None: ...

class WorkflowGoldSpec(_message.Message):
    __slots__ = ("models", "dimensions", "preview_rows")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_ROWS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    dimensions: _containers.RepeatedScalarFieldContainer[str]
    preview_rows: int
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., dimensions: _Optional[_Iterable[str]] = ..., preview_rows: _Optional[int] = ...) -> None: ...

class BuildWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "run_id", "spec", "jobs", "failed_jobs")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    FAILED_JOBS_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    spec: WorkflowGoldSpec
    jobs: _containers.RepeatedScalarFieldContainer[str]
    failed_jobs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., spec: _Optional[_Union[WorkflowGoldSpec, _Mapping]] = ..., jobs: _Optional[_Iterable[str]] = ..., failed_jobs: _Optional[_Iterable[str]] = ...) -> None: ...
