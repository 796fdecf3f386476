"""The layer clients against a real server: token, deadlines, errors tagged transient or not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from flowforge.embedded import pick_ports
from flowforge.errors import InvalidArgument, NotFound, Unauthenticated, Unavailable
from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2, common_pb2
from orchestrator.clients import BronzeClient
from services.bronze.server import create_server


@pytest.fixture(scope="module")
def guarded(settings: Settings, store: ObjectStore) -> Iterator[tuple[Settings, LayerServer]]:
    with_token = settings.model_copy(update={"grpc_token": SecretStr("s3cret-token")})
    server = create_server(with_token, "127.0.0.1:0", store)
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
