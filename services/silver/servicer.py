"""SilverService: converts the request, delegates to refine, returns the LayerResult."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format

from flowforge.ids import run_id_or_new
from flowforge.layout import JobKey
from flowforge.runtime import Deadline, rpc
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import common_pb2, silver_pb2, silver_pb2_grpc
from services.silver.refine import RefinePlan, refine
from services.silver.spec import parse_spec


def plan_from_proto(request: silver_pb2.RefineRequest) -> RefinePlan:
    return RefinePlan(
        job=JobKey.of(request.job.workflow_id, request.job.job_id),
        run_id=run_id_or_new(request.run_id),
        spec=parse_spec(request.spec),
        spec_json=json_format.MessageToDict(request.spec, preserving_proto_field_name=True),
    )


def log_fields(request: Any, result: common_pb2.LayerResult | None) -> dict[str, Any]:
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
            duplicates_removed=result.duplicates_removed,
            input_run_id=result.input_run_id,
            reused=result.reused,
        )
    return fields


class SilverServicer(silver_pb2_grpc.SilverServiceServicer):
    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        self._settings = settings
        self._store = store

    @rpc(log_fields)
    def Refine(  # noqa: N802 (gRPC method name)
        self, request: silver_pb2.RefineRequest, context: grpc.ServicerContext, deadline: Deadline
    ) -> common_pb2.LayerResult:
        return refine(self._store, self._settings, plan_from_proto(request), deadline)
