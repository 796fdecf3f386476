"""Typed clients of the three layer services: a deadline on every call, errors as domain errors.

The channel asks for `round_robin` over every address the name resolves to (several
replicas behind one DNS name share the calls) and retries UNAVAILABLE a few times within
the call; the flow's task retries handle longer outages. An RpcError becomes a
FlowForgeError of the same status, keeping the service's message: transient ones
(`retryable`: UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED) are worth retrying,
the rest are terminal, unless the service's trailing metadata says otherwise (a gold
model over its memory or time limit fails the same way every time).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import grpc

from flowforge import errors
from flowforge.reports import LayerReport
from flowforge.runtime import MAX_MESSAGE_BYTES, RETRYABLE_KEY, channel_credentials
from flowforge.settings import Settings
from flowforge.v1 import (
    bronze_pb2,
    bronze_pb2_grpc,
    common_pb2,
    gold_pb2,
    gold_pb2_grpc,
    silver_pb2,
    silver_pb2_grpc,
)
from flowforge.wire import from_proto
from orchestrator.progress import Record, watching

_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": f"flowforge.v1.{name}"} for name in
                         ("BronzeService", "SilverService", "GoldService")],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)  # fmt: skip

_ERRORS: dict[grpc.StatusCode, type[errors.FlowForgeError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.ABORTED: errors.Conflict,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
    grpc.StatusCode.CANCELLED: errors.Cancelled,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
}


def error_from_rpc(exc: grpc.RpcError, service: str) -> errors.FlowForgeError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else None) or str(code.name)
    kind = _ERRORS.get(code, errors.FlowForgeError)
    if code is grpc.StatusCode.UNAVAILABLE:
        details = f"{service} service unavailable: {details}"
    error = kind(details, retryable=said_retryable(exc))
    if kind is errors.FlowForgeError:
        error.status = code.name  # keep UNKNOWN, INTERNAL, ... as the service said
    return error


def said_retryable(exc: grpc.RpcError) -> bool | None:
    """What the service's trailing metadata says about repeating the call; None: nothing."""
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == RETRYABLE_KEY and value in ("true", "false"):
            return value == "true"
    return None


def open_channel(address: str, settings: Settings) -> grpc.Channel:
    options = [
        ("grpc.service_config", _SERVICE_CONFIG),
        ("grpc.enable_retries", 1),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    credentials = channel_credentials(settings)
    if credentials is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, credentials, options=options)


class _LayerClient:
    service = ""

    def __init__(self, settings: Settings, address: str) -> None:
        self.address = address
        self._deadline = settings.layer_deadline_seconds
        token = settings.grpc_token
        self._metadata = (("authorization", f"Bearer {token.get_secret_value()}"),) if token else ()
        self._channel = open_channel(address, settings)

    def _call(self, method: Callable[..., Any], request: Any) -> LayerReport:
        try:
            result: common_pb2.LayerResult = method(
                request, timeout=self._deadline, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.service) from None
        return from_proto(result)

    def watching(
        self, job: common_pb2.JobRef, run_id: str, record: Record, interval: float
    ) -> contextlib.AbstractContextManager[None]:
        """Records the run's progress (see orchestrator.progress) while the body runs."""
        request = common_pb2.WatchRequest(job=job, run_id=run_id)
        stub: Any = self._stub  # type: ignore[attr-defined]
        return watching(stub.Watch, request, record, interval, self._deadline, self._metadata)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BronzeClient(_LayerClient):
    service = "bronze"

    def __init__(self, settings: Settings, address: str | None = None) -> None:
        super().__init__(settings, address or settings.bronze_address)
        self._stub = bronze_pb2_grpc.BronzeServiceStub(self._channel)

    def ingest(self, request: bronze_pb2.IngestRequest) -> LayerReport:
        return self._call(self._stub.Ingest, request)


class SilverClient(_LayerClient):
    service = "silver"

    def __init__(self, settings: Settings, address: str | None = None) -> None:
        super().__init__(settings, address or settings.silver_address)
        self._stub = silver_pb2_grpc.SilverServiceStub(self._channel)

    def refine(self, request: silver_pb2.RefineRequest) -> LayerReport:
        return self._call(self._stub.Refine, request)


class GoldClient(_LayerClient):
    service = "gold"

    def __init__(self, settings: Settings, address: str | None = None) -> None:
        super().__init__(settings, address or settings.gold_address)
        self._stub = gold_pb2_grpc.GoldServiceStub(self._channel)

    def build(self, request: gold_pb2.BuildRequest) -> LayerReport:
        return self._call(self._stub.Build, request)

    def build_workflow(self, request: gold_pb2.BuildWorkflowRequest) -> LayerReport:
        return self._call(self._stub.BuildWorkflow, request)
