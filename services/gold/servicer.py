"""GoldService: converts the request, delegates to build, returns the LayerResult."""

from __future__ import annotations

import grpc

from flowforge.ids import run_id_or_new
from flowforge.layout import JobKey
from flowforge.runtime import Deadline, rpc
from flowforge.settings import Settings
from flowforge.specs.gold import parse_gold_spec
from flowforge.storage import ObjectStore
from flowforge.v1 import common_pb2, gold_pb2, gold_pb2_grpc
from flowforge.wire import log_fields, to_proto
from services.gold.build import BuildPlan, build
from services.gold.sandbox import Sandbox


def plan_from_proto(request: gold_pb2.BuildRequest) -> BuildPlan:
    spec = parse_gold_spec(request.spec)
    return BuildPlan(
        job=JobKey.of(request.job.workflow_id, request.job.job_id),
        run_id=run_id_or_new(request.run_id),
        models=spec.models,
        dimensions=spec.dimensions,
        profile=spec.profile,
        preview_rows=spec.preview_rows,
    )


class GoldServicer(gold_pb2_grpc.GoldServiceServicer):
    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        # The build processes' pool: one warm child waiting, build slots (sandbox.py).
        self._sandbox = Sandbox(settings)
        self._settings = settings
        self._store = store

    def close(self) -> None:
        """Stops the warm build process; the server calls it when it stops."""
        self._sandbox.close()

    @rpc(log_fields)
    def Build(  # noqa: N802 (gRPC method name)
        self, request: gold_pb2.BuildRequest, context: grpc.ServicerContext, deadline: Deadline
    ) -> common_pb2.LayerResult:
        plan = plan_from_proto(request)
        return to_proto(build(self._settings, self._store, self._sandbox, plan, deadline))
