"""SilverService: converts the request, delegates to refine, returns the LayerResult."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from google.protobuf import json_format

from flowforge.ids import run_id_or_new
from flowforge.layout import JobKey
from flowforge.progress import ProgressBoard
from flowforge.runtime import Deadline, rpc
from flowforge.settings import Settings
from flowforge.specs.silver import parse_spec
from flowforge.storage import ObjectStore
from flowforge.v1 import common_pb2, silver_pb2, silver_pb2_grpc
from flowforge.wire import log_fields, to_proto
from services.silver.refine import RefinePlan, refine
from services.watch import watch


def plan_from_proto(request: silver_pb2.RefineRequest) -> RefinePlan:
    return RefinePlan(
        job=JobKey.of(request.job.workflow_id, request.job.job_id),
        run_id=run_id_or_new(request.run_id),
        spec=parse_spec(request.spec),
        spec_json=json_format.MessageToDict(request.spec, preserving_proto_field_name=True),
        full_refresh=request.full_refresh,
    )


class SilverServicer(silver_pb2_grpc.SilverServiceServicer):
    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        self._settings = settings
        self._store = store
        self.progress = ProgressBoard("silver")

    @rpc(log_fields)
    def Refine(  # noqa: N802 (gRPC method name)
        self, request: silver_pb2.RefineRequest, context: grpc.ServicerContext, deadline: Deadline
    ) -> common_pb2.LayerResult:
        plan = plan_from_proto(request)
        with self.progress.run(plan.job.workflow_id, plan.job.job_id, plan.run_id) as report:
            return to_proto(refine(self._store, self._settings, plan, deadline, report))

    def Watch(  # noqa: N802 (gRPC method name)
        self, request: common_pb2.WatchRequest, context: grpc.ServicerContext
    ) -> Iterator[common_pb2.Progress]:
        return watch(self.progress, request, context)
