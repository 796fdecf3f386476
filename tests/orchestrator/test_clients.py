"""The layer clients against a real server: token, deadlines, errors tagged transient or not,
UNAVAILABLE retried by the channel."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from pydantic import SecretStr

from flowforge.embedded import pick_ports
from flowforge.errors import InvalidArgument, NotFound, Unauthenticated, Unavailable
from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2, bronze_pb2_grpc, common_pb2
from flowforge.wire import from_proto
from orchestrator.clients import BronzeClient
from services.layers import create_server


@pytest.fixture(scope="module")
def guarded(settings: Settings, store: ObjectStore) -> Iterator[tuple[Settings, LayerServer]]:
    with_token = settings.model_copy(update={"grpc_token": SecretStr("s3cret-token")})
    server = create_server("bronze", with_token, "127.0.0.1:0", store)
    yield with_token, server
    server.stop(0)


def request(workflow_id: str = "nobody-here") -> bronze_pb2.IngestRequest:
    return bronze_pb2.IngestRequest(job=common_pb2.JobRef(workflow_id=workflow_id, job_id="j"))


def test_token_is_sent_and_service_errors_keep_their_message(
    guarded: tuple[Settings, LayerServer],
) -> None:
    settings, server = guarded
    with BronzeClient(settings, f"127.0.0.1:{server.port}") as client:
        with pytest.raises(NotFound, match="no CSV") as missing:
            client.ingest(request())
        assert not missing.value.retryable
        with pytest.raises(InvalidArgument, match=r"job.workflow_id '\.\./x'"):
            client.ingest(request("../x"))


def test_a_missing_token_is_terminal(guarded: tuple[Settings, LayerServer]) -> None:
    settings, server = guarded
    anonymous = settings.model_copy(update={"grpc_token": None})
    client = BronzeClient(anonymous, f"127.0.0.1:{server.port}")
    with client, pytest.raises(Unauthenticated) as refused:
        client.ingest(request())
    assert not refused.value.retryable


def test_nobody_listening_is_transient(settings: Settings) -> None:
    port = pick_ports()["s3.port"]
    quick = settings.model_copy(update={"layer_deadline_seconds": 3.0})
    client = BronzeClient(quick, f"127.0.0.1:{port}")
    with client, pytest.raises(Unavailable, match="bronze service unavailable") as down:
        client.ingest(request())
    assert down.value.retryable


class Flaky(bronze_pb2_grpc.BronzeServiceServicer):
    """Answers each Ingest with the next code of `codes` (OK once they run out)."""

    def __init__(self, *codes: grpc.StatusCode) -> None:
        self.codes = list(codes)
        self.attempts = 0

    def Ingest(self, request: Any, context: grpc.ServicerContext) -> common_pb2.LayerResult:  # noqa: N802
        self.attempts += 1
        if self.codes:
            context.abort(self.codes.pop(0), f"attempt {self.attempts} refused")
        return common_pb2.LayerResult()


@pytest.fixture
def flaky() -> Iterator[tuple[Flaky, str]]:
    """A bare bronze service on loopback (no FlowForge server around it)."""
    servicer = Flaky()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    bronze_pb2_grpc.add_BronzeServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0)


def test_unavailable_once_is_retried_by_the_channel(
    settings: Settings, flaky: tuple[Flaky, str]
) -> None:
    """The client channel's service config retries UNAVAILABLE within the one call."""
    servicer, address = flaky
    servicer.codes = [grpc.StatusCode.UNAVAILABLE]
    with BronzeClient(settings, address) as client:
        assert client.ingest(request()) == from_proto(common_pb2.LayerResult())
    assert servicer.attempts == 2


def test_the_channel_gives_up_after_max_attempts(
    settings: Settings, flaky: tuple[Flaky, str]
) -> None:
    servicer, address = flaky
    servicer.codes = [grpc.StatusCode.UNAVAILABLE] * 10
    with BronzeClient(settings, address) as client, pytest.raises(Unavailable) as down:
        client.ingest(request())
    assert servicer.attempts == 4  # the retry policy's maxAttempts
    assert down.value.retryable and "attempt 4 refused" in str(down.value)


def test_other_codes_are_not_retried_by_the_channel(
    settings: Settings, flaky: tuple[Flaky, str]
) -> None:
    servicer, address = flaky
    servicer.codes = [grpc.StatusCode.INVALID_ARGUMENT]
    with BronzeClient(settings, address) as client, pytest.raises(InvalidArgument):
        client.ingest(request())
    assert servicer.attempts == 1
