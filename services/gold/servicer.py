"""GoldService: converts the request, delegates to build, returns the LayerResult."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from flowforge.ids import run_id_or_new, validate_id
from flowforge.layout import JobKey
from flowforge.progress import ProgressBoard
from flowforge.runtime import Deadline, rpc
from flowforge.settings import Settings
from flowforge.specs.gold import parse_gold_spec, parse_workflow_gold_spec
from flowforge.storage import ObjectStore
from flowforge.v1 import common_pb2, gold_pb2, gold_pb2_grpc
from flowforge.wire import log_fields, to_proto
from services.gold.build import BuildPlan, build
from services.gold.sandbox import Sandbox
from services.gold.workflow import WorkflowPlan, build_workflow
from services.watch import watch


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


def workflow_plan_from_proto(request: gold_pb2.BuildWorkflowRequest) -> WorkflowPlan:
    workflow_id = validate_id(request.workflow_id, "workflow_id")
    jobs = [validate_id(job, f"jobs[{i}]") for i, job in enumerate(request.jobs)]
    return WorkflowPlan(
        workflow_id=workflow_id,
        run_id=run_id_or_new(request.run_id),
        gold=parse_workflow_gold_spec(request.spec, workflow_id, jobs),
        jobs=jobs,
        failed_jobs=list(request.failed_jobs),
    )


def workflow_log_fields(
    request: gold_pb2.BuildWorkflowRequest, result: common_pb2.LayerResult | None
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "workflow_id": request.workflow_id[:64],
        "run_id": (result.run_id if result else request.run_id)[:64],
        "failed_jobs": [job[:64] for job in request.failed_jobs][:50],
    }
    if result is not None:
        fields |= {
            "reused": result.reused,
            "models": {m.name[:64]: m.status for m in result.models[:50]},
        }
    return fields


class GoldServicer(gold_pb2_grpc.GoldServiceServicer):
    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        # The build processes' pool: one warm child waiting, build slots (sandbox.py).
        self._sandbox = Sandbox(settings)
        self._settings = settings
        self._store = store
        self.progress = ProgressBoard("gold")

    def close(self) -> None:
        """Stops the warm build process; the server calls it when it stops."""
        self._sandbox.close()

    @rpc(log_fields)
    def Build(  # noqa: N802 (gRPC method name)
        self, request: gold_pb2.BuildRequest, context: grpc.ServicerContext, deadline: Deadline
    ) -> common_pb2.LayerResult:
        plan = plan_from_proto(request)
        with self.progress.run(plan.job.workflow_id, plan.job.job_id, plan.run_id) as report:
            return to_proto(
                build(self._settings, self._store, self._sandbox, plan, deadline, report)
            )

    def Watch(  # noqa: N802 (gRPC method name)
        self, request: common_pb2.WatchRequest, context: grpc.ServicerContext
    ) -> Iterator[common_pb2.Progress]:
        """The progress of a Build run (BuildWorkflow does not report any)."""
        return watch(self.progress, request, context)

    @rpc(workflow_log_fields)
    def BuildWorkflow(  # noqa: N802 (gRPC method name)
        self,
        request: gold_pb2.BuildWorkflowRequest,
        context: grpc.ServicerContext,
        deadline: Deadline,
    ) -> common_pb2.LayerResult:
        plan = workflow_plan_from_proto(request)
        report = build_workflow(self._settings, self._store, self._sandbox, plan, deadline)
        return to_proto(report)
