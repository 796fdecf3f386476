"""BronzeService: converts the request, delegates to ingest, returns the LayerResult."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from flowforge.errors import InvalidArgument
from flowforge.ids import run_id_or_new
from flowforge.layout import JobKey
from flowforge.progress import ProgressBoard
from flowforge.runtime import Deadline, rpc
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2, bronze_pb2_grpc, common_pb2
from flowforge.wire import log_fields, to_proto
from services.bronze.ingest import IngestPlan, ingest
from services.bronze.options import CsvOptions
from services.watch import watch

MAX_FORGET = 1000


def validate_landing_name(name: str, field: str) -> str:
    """A landing file's name: the last part of its key (any name S3 allows, no '/')."""
    if not name or "/" in name or len(name) > 1024 or any(ord(c) < 32 for c in name):
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise InvalidArgument(f"{field} {shown!r} is not a landing file name")
    return name


def plan_from_proto(request: bronze_pb2.IngestRequest) -> IngestPlan:
    if len(request.forget) > MAX_FORGET:
        raise InvalidArgument(f"forget names more than {MAX_FORGET} files")
    csv = request.csv
    return IngestPlan(
        job=JobKey.of(request.job.workflow_id, request.job.job_id),
        run_id=run_id_or_new(request.run_id),
        options=CsvOptions.validated(
            delimiter=csv.delimiter,
            quote=csv.quote,
            escape=csv.escape,
            header=csv.header if csv.HasField("header") else None,
            encoding=csv.encoding,
            null_markers=list(csv.null_markers),
        ),
        full_refresh=request.full_refresh,
        forget=tuple(
            validate_landing_name(name, f"forget[{i}]") for i, name in enumerate(request.forget)
        ),
    )


class BronzeServicer(bronze_pb2_grpc.BronzeServiceServicer):
    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        self._settings = settings
        self._store = store
        self.progress = ProgressBoard("bronze")

    @rpc(log_fields)
    def Ingest(  # noqa: N802 (gRPC method name)
        self, request: bronze_pb2.IngestRequest, context: grpc.ServicerContext, deadline: Deadline
    ) -> common_pb2.LayerResult:
        plan = plan_from_proto(request)
        with self.progress.run(plan.job.workflow_id, plan.job.job_id, plan.run_id) as report:
            return to_proto(ingest(self._store, self._settings, plan, deadline, report))

    def Watch(  # noqa: N802 (gRPC method name)
        self, request: common_pb2.WatchRequest, context: grpc.ServicerContext
    ) -> Iterator[common_pb2.Progress]:
        return watch(self.progress, request, context)
