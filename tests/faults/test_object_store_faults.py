"""A layer against a misbehaving object store (through the fault store_proxy, real sockets)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from flowforge import tables
from flowforge.embedded import EmbeddedS3
from flowforge.layout import JobKey
from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore, prepare_store
from flowforge.tables import TableRef
from flowforge.v1 import bronze_pb2_grpc
from services.layers import create_server
from tests.bronze.conftest import ingest, serving, upload
from tests.faults.conftest import through
from tests.faults.proxy import FaultProxy


@pytest.fixture
def bronze_via_proxy(settings: Settings, store_proxy: FaultProxy) -> Iterator[LayerServer]:
    proxied = through(store_proxy, settings, s3_read_timeout_seconds=5)
    server = create_server("bronze", proxied, "127.0.0.1:0", ObjectStore(proxied))
    yield server
    server.stop(0)


def _stub(server: LayerServer) -> tuple[grpc.Channel, bronze_pb2_grpc.BronzeServiceStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    return channel, bronze_pb2_grpc.BronzeServiceStub(channel)


def test_refused_connections_are_unavailable_then_recover(
    bronze_via_proxy: LayerServer, store_proxy: FaultProxy, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "a.csv", b"id\n1\n2\n")
    channel, stub = _stub(bronze_via_proxy)
    with channel:
        store_proxy.set("refuse")
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            ingest(stub, job, run_id="r1")
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "unreachable" in info.value.details()
        assert time.monotonic() - started < 10  # fails fast, so the caller can back off
        assert serving(channel)
        store_proxy.set("pass")
        result = ingest(stub, job, run_id="r1")
        assert result.rows_out == 2


def test_upload_cut_half_way_leaves_nothing_visible_and_retry_commits_whole(
    bronze_via_proxy: LayerServer, store_proxy: FaultProxy, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "a.csv", b"id\n1\n")
    channel, stub = _stub(bronze_via_proxy)
    with channel:
        first = ingest(stub, job, run_id="r1")
        noise = os.urandom(300_000 * 20).hex().encode()  # incompressible: a large part
        big = b"id,payload\n" + b"".join(
            b"%d,%s\n" % (i, noise[i * 40 : i * 40 + 40]) for i in range(300_000)
        )
        upload(store, job, "b.csv", big)
        # Cut the first connection that sends more than 2 MB: the Parquet part upload.
        store_proxy.set("cut", cut_after_bytes=2 << 20, times=1)
        with pytest.raises(grpc.RpcError) as info:
            ingest(stub, job, run_id="r2")
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert store_proxy.hurt == 1
        table = tables.require(store.settings, TableRef.bronze(job), "bronze")
        (latest,) = tables.history(table, 1)
        assert (latest.run_id, latest.version) == ("r1", first.table_version)  # untouched
        bucket = f"s3://{store.bucket}/"
        assert [u.removeprefix(bucket) for u in table.file_uris()] == [
            o.key for o in first.data_objects
        ]
        retried = ingest(stub, job, run_id="r2")
        assert retried.total_rows == 300_001
        assert {f.status for f in retried.files} == {"SKIPPED", "INGESTED"}
        for obj in retried.data_objects:
            head = store.head(obj.key)
            assert head is not None and head.size == obj.size_bytes


def test_store_that_stops_answering_hits_the_deadline(
    bronze_via_proxy: LayerServer, store_proxy: FaultProxy, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "a.csv", b"id\n1\n")
    channel, stub = _stub(bronze_via_proxy)
    with channel:
        store_proxy.set("drop")
        with pytest.raises(grpc.RpcError) as info:
            ingest(stub, job, timeout=3)
        assert info.value.code() in (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.UNAVAILABLE,
        )
        store_proxy.set("pass")
        assert serving(channel)


def test_proxy_delay_only_slows_down(
    bronze_via_proxy: LayerServer, store_proxy: FaultProxy, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "a.csv", b"id\n1\n")
    channel, stub = _stub(bronze_via_proxy)
    with channel:
        store_proxy.set("delay", delay_seconds=0.05)
        started = time.monotonic()
        result = ingest(stub, job)
        assert result.rows_out == 1
        assert time.monotonic() - started >= 0.05


def test_a_service_started_before_its_object_store_creates_the_bucket_once_it_is_up(
    s3: EmbeddedS3, settings: Settings, store_proxy: FaultProxy, job: JobKey
) -> None:
    bucket = f"late-{os.getpid()}-{int(time.monotonic() * 1000) % 100000}"
    late = through(store_proxy, settings, s3_bucket=bucket)
    store_proxy.set("refuse")  # the object store is not up yet when the service starts
    server = create_server("bronze", late, "127.0.0.1:0", prepare_store(late, keep_trying=True))
    try:
        channel, stub = _stub(server)
        with channel:
            with pytest.raises(grpc.RpcError) as info:
                ingest(stub, job, run_id="r1")
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            store_proxy.set("pass")  # it comes up: the service creates the bucket by itself
            direct = ObjectStore(settings.model_copy(update={"s3_bucket": bucket}))
            deadline = time.monotonic() + 20
            while not direct.bucket_exists():
                assert time.monotonic() < deadline, f"bucket {bucket!r} was never created"
                time.sleep(0.2)
            upload(direct, job, "a.csv", b"id\n1\n2\n")
            assert ingest(stub, job, run_id="r1").rows_out == 2
    finally:
        server.stop(0)


def test_api_upload_while_the_store_refuses_is_503_then_lands(
    settings: Settings, store_proxy: FaultProxy, store: ObjectStore, tmp_path: Path
) -> None:
    """The upload's S3 writer runs in a thread of its own: its failure reaches the request
    as a 503 naming the store, and the API goes on serving."""
    from orchestrator.api.app import create_app
    from orchestrator.store import Store
    from orchestrator.workflows import load_workflow_file
    from tests.api.conftest import ApiServer
    from tests.orchestrator.conftest import SAMPLE_WORKFLOW

    proxied = through(store_proxy, settings, state_dir=tmp_path)
    executions = Store.open(proxied)
    sample = load_workflow_file(SAMPLE_WORKFLOW)  # under an id no other test lands under
    workflow = sample.model_copy(update={"id": f"upload-{uuid.uuid4().hex[:8]}"})
    executions.save_workflow(workflow)
    app = create_app(proxied, store=executions, objects=ObjectStore(proxied))
    url = f"/api/workflows/{workflow.id}/jobs/customers/files"
    key = f"landing/{workflow.id}/customers/c.csv"
    csv = b"id,name\n" + b"1,a\n" * 300_000  # several parts' worth
    with ApiServer(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        store_proxy.set("refuse")
        refused = client.post(url, files=[("files", ("c.csv", csv, "text/csv"))])
        assert refused.status_code == 503, refused.text
        assert "object store" in refused.json()["error"]["message"]
        assert store.head(key) is None  # (read past the proxy) nothing landed
        assert client.get("/healthz").status_code == 200
        store_proxy.set("pass")
        landed = client.post(url, files=[("files", ("c.csv", csv, "text/csv"))])
        assert landed.status_code == 201, landed.text
    info = store.head(key)
    assert info is not None and info.size == len(csv)
    executions.close()


def test_an_api_upload_the_store_drops_half_way_leaves_no_multipart_upload_open(
    settings: Settings, store_proxy: FaultProxy, store: ObjectStore, tmp_path: Path
) -> None:
    """The store goes away in the middle of a large upload (its multipart upload begun):
    boto3's abort of it cannot reach the store either. The request is 503; once the store
    answers again the API aborts the upload (before, its parts stayed stored for ever,
    listed by no one)."""
    from orchestrator.api.app import create_app
    from orchestrator.store import Store
    from orchestrator.workflows import parse_workflow
    from tests.api.conftest import ApiServer
    from tests.api.test_request_bodies import file_part, open_uploads, wait_for

    proxied = through(store_proxy, settings, state_dir=tmp_path, api_reconcile_seconds=0.5)
    executions = Store.open(proxied)
    workflow = f"dropped-{uuid.uuid4().hex[:8]}"
    executions.save_workflow(parse_workflow(f"id: {workflow}\njobs:\n  - id: job\n"))
    app = create_app(proxied, store=executions, objects=ObjectStore(proxied))
    key = f"landing/{workflow}/job/big.csv"
    half = b"1,a\n" * ((9 << 20) // 4)  # past the 8 MB at which boto3 goes multipart

    def body() -> Iterator[bytes]:
        yield file_part("big.csv") + b"id,name\n" + half
        wait_for(lambda: open_uploads(store, key) != [], "begun")  # read past the proxy
        store_proxy.set("refuse")
        yield half + b"\r\n--flowforge-test-boundary--\r\n"

    headers = {"Content-Type": "multipart/form-data; boundary=flowforge-test-boundary"}
    with ApiServer(app) as base:
        url = f"{base}/api/workflows/{workflow}/jobs/job/files"
        refused = httpx.post(url, content=body(), headers=headers, timeout=60)
        assert refused.status_code == 503, refused.text
        assert open_uploads(store, key) != []  # boto3 could not abort it: the store was gone
        store_proxy.set("pass")
        wait_for(lambda: open_uploads(store, key) == [], "aborted once the store is back")
    assert store.head(key) is None
    executions.close()
