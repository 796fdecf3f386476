"""BronzeService: converts the request, delegates to ingest, returns the LayerResult."""

from __future__ import annotations

import grpc

from flowforge.ids import run_id_or_new
from flowforge.layout import JobKey
from flowforge.runtime import Deadline, rpc
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2, bronze_pb2_grpc, common_pb2
from flowforge.wire import log_fields, to_proto
from services.bronze.ingest import IngestPlan, ingest
from services.bronze.options import CsvOptions


def plan_from_proto(request: bronze_pb2.IngestRequest) -> IngestPlan:
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
    )


class BronzeServicer(bronze_pb2_grpc.BronzeServiceServicer):
    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        self._settings = settings
        self._store = store

    @rpc(log_fields)
    def Ingest(  # noqa: N802 (gRPC method name)
        self, request: bronze_pb2.IngestRequest, context: grpc.ServicerContext, deadline: Deadline
    ) -> common_pb2.LayerResult:
        return to_proto(ingest(self._store, self._settings, plan_from_proto(request), deadline))
