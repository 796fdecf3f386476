"""GoldService: converts the request, delegates to build, returns the LayerResult."""

from __future__ import annotations

from typing import Any

import grpc

from flowforge.errors import InvalidArgument
from flowforge.ids import run_id_or_new, validate_id
from flowforge.layout import JobKey
from flowforge.runtime import Deadline, rpc
from flowforge.storage import ObjectStore
from flowforge.v1 import common_pb2, gold_pb2, gold_pb2_grpc
from services.gold.build import DEFAULT_PREVIEW_ROWS, MAX_PREVIEW_ROWS, BuildPlan, Model, build
from services.gold.profile import PROFILE_MODEL
from services.gold.sandbox import Sandbox


def plan_from_proto(request: gold_pb2.BuildRequest) -> BuildPlan:
    spec = request.spec
    models, seen = [], set()
    for i, model in enumerate(spec.models):
        name = validate_id(model.name, f"spec.models[{i}].name")
        if name.lower() in seen:
            raise InvalidArgument(f"spec.models[{i}].name {name!r} is used by another model")
        if name.lower() == PROFILE_MODEL and not spec.skip_profile:
            raise InvalidArgument(
                f"spec.models[{i}].name {name!r} is the built-in profile's name: "
                "rename the model or set skip_profile"
            )
        seen.add(name.lower())
        models.append(Model(name, model.sql))
    dimensions: list[str] = []
    for i, name in enumerate(spec.dimensions):
        if validate_id(name, f"spec.dimensions[{i}]") not in dimensions:
            dimensions.append(name)
    if not 0 <= spec.preview_rows <= MAX_PREVIEW_ROWS:
        raise InvalidArgument(f"spec.preview_rows must be between 0 and {MAX_PREVIEW_ROWS}")
    if not models and spec.skip_profile:
        raise InvalidArgument("spec has no models and skip_profile is set: nothing to build")
    return BuildPlan(
        job=JobKey.of(request.job.workflow_id, request.job.job_id),
        run_id=run_id_or_new(request.run_id),
        models=models,
        dimensions=dimensions,
        profile=not spec.skip_profile,
        preview_rows=spec.preview_rows or DEFAULT_PREVIEW_ROWS,
    )


def log_fields(request: Any, result: common_pb2.LayerResult | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "workflow_id": request.job.workflow_id[:64],
        "job_id": request.job.job_id[:64],
        "run_id": (result.run_id if result else request.run_id)[:64],
        "models": [m.name[:64] for m in request.spec.models][:50],
    }
    if result is not None:
        fields.update(rows_in=result.rows_in, rows_out=result.rows_out, reused=result.reused)
    return fields


class GoldServicer(gold_pb2_grpc.GoldServiceServicer):
    def __init__(self, sandbox: Sandbox, store: ObjectStore) -> None:
        self._sandbox = sandbox
        self._store = store

    @rpc(log_fields)
    def Build(  # noqa: N802 (gRPC method name)
        self, request: gold_pb2.BuildRequest, context: grpc.ServicerContext, deadline: Deadline
    ) -> common_pb2.LayerResult:
        return build(self._store, self._sandbox, plan_from_proto(request), deadline)
