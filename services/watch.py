"""The Watch RPC every layer service serves: one run's progress, streamed from its board."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc

from flowforge.errors import FlowForgeError
from flowforge.progress import ProgressBoard, follow
from flowforge.v1 import common_pb2
from flowforge.wire import progress_to_proto

log = logging.getLogger("flowforge.rpc")


def watch(
    board: ProgressBoard, request: common_pb2.WatchRequest, context: grpc.ServicerContext
) -> Iterator[common_pb2.Progress]:
    """Streams the run's progress until it ends; NOT_FOUND when it does not start soon."""
    job = request.job
    try:
        for snapshot in follow(
            board, job.workflow_id, job.job_id, request.run_id, active=context.is_active
        ):
            yield progress_to_proto(snapshot)
    except FlowForgeError as exc:
        log.info("Watch", extra={"rpc": "Watch", "code": exc.status, "error": exc.message})
        context.abort(grpc.StatusCode[exc.status], exc.message)
