"""The network between the orchestrator and a layer service resets connections (the fault
proxy in front of a real bronze server on loopback, sending RSTs): the orchestrator's
client gets UNAVAILABLE naming the service before its deadline, nothing is committed, the
service itself keeps serving, and the call goes through once the network does."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from flowforge import tables
from flowforge.errors import Unavailable
from flowforge.layout import JobKey
from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from flowforge.v1 import bronze_pb2, common_pb2
from orchestrator.clients import BronzeClient
from services.layers import create_server
from tests.bronze.conftest import serving, upload
from tests.faults.proxy import FaultProxy

DEADLINE_SECONDS = 20.0


@pytest.fixture
def bronze_server(settings: Settings, store: ObjectStore) -> Iterator[LayerServer]:
    server = create_server("bronze", settings, "127.0.0.1:0", store)
    yield server
    server.stop(0)


@pytest.fixture
def service_proxy(bronze_server: LayerServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(("127.0.0.1", bronze_server.port))
    yield proxy
    proxy.close()


def request(job: JobKey, run_id: str) -> bronze_pb2.IngestRequest:
    return bronze_pb2.IngestRequest(
        job=common_pb2.JobRef(workflow_id=job.workflow_id, job_id=job.job_id), run_id=run_id
    )


def test_connections_reset_in_front_of_a_service(
    settings: Settings,
    store: ObjectStore,
    job: JobKey,
    bronze_server: LayerServer,
    service_proxy: FaultProxy,
) -> None:
    upload(store, job, "a.csv", b"id,name\n1,a\n2,b\n")
    client_settings = settings.model_copy(update={"layer_deadline_seconds": DEADLINE_SECONDS})
    bronze = TableRef.bronze(job)

    service_proxy.set("reset")  # every connection: an RST as soon as it is accepted
    started = time.monotonic()
    with (
        BronzeClient(client_settings, service_proxy.address) as client,
        pytest.raises(Unavailable) as caught,
    ):
        client.ingest(request(job, "r1"))
    assert time.monotonic() - started < DEADLINE_SECONDS  # refused, not left to time out
    assert caught.value.message.startswith("bronze service unavailable: "), caught.value.message
    assert service_proxy.hurt >= 1
    assert tables.load(settings, bronze) is None
    with grpc.insecure_channel(f"127.0.0.1:{bronze_server.port}") as direct:
        assert serving(direct)  # the service never saw a request and still serves

    service_proxy.set("pass")
    with BronzeClient(client_settings, service_proxy.address) as client:
        result = client.ingest(request(job, "r2"))
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (2, 2, 0)
    (committed,) = tables.history(tables.require(settings, bronze, "bronze"))
    assert committed.run_id == "r2"
