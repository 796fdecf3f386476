"""Fixtures for bronze: a real server on loopback, a stub, and helpers to read its tables."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

import grpc
import polars as pl
import pytest
from deltalake import DeltaTable
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flowforge import tables
from flowforge.embedded import EmbeddedS3
from flowforge.layout import JobKey, landing_prefix
from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from flowforge.v1 import bronze_pb2, bronze_pb2_grpc, common_pb2
from services.layers import create_server
from tests.faults.proxy import FaultProxy
from tests.waiting import threads_in

# The bronze server behind `store_proxy` reads fields of up to 1 MB, in 2 MB blocks.
LIMITED = {"bronze_max_field_mb": 1, "bronze_block_size_mb": 2}


@pytest.fixture(scope="module")
def bronze_server(settings: Settings, store: ObjectStore) -> Iterator[LayerServer]:
    server = create_server("bronze", settings, "127.0.0.1:0", store)
    yield server
    server.stop(0)


@pytest.fixture(scope="module")
def channel(bronze_server: LayerServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{bronze_server.port}") as ch:
        yield ch


@pytest.fixture(scope="module")
def store_proxy(s3: EmbeddedS3) -> Iterator[FaultProxy]:
    """A TCP proxy in front of the object store, to slow it down (set("delay", ...))."""
    endpoint = urlparse(s3.endpoint_url)
    proxy = FaultProxy((endpoint.hostname or "127.0.0.1", endpoint.port or 80))
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def limited_server(settings: Settings, store_proxy: FaultProxy) -> Iterator[LayerServer]:
    """A bronze server with the LIMITED settings, reaching the store through the proxy."""
    endpoint = {"s3_endpoint_url": f"http://{store_proxy.address}"}
    limited = settings.model_copy(update=LIMITED | endpoint)
    server = create_server("bronze", limited, "127.0.0.1:0", ObjectStore(limited))
    yield server
    server.stop(0)


@pytest.fixture(scope="module")
def limited_channel(limited_server: LayerServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{limited_server.port}") as ch:
        yield ch


@pytest.fixture
def limited_bronze(
    limited_channel: grpc.Channel, store_proxy: FaultProxy
) -> Iterator[bronze_pb2_grpc.BronzeServiceStub]:
    yield bronze_pb2_grpc.BronzeServiceStub(limited_channel)
    store_proxy.set("pass")


@pytest.fixture
def bronze(channel: grpc.Channel) -> bronze_pb2_grpc.BronzeServiceStub:
    return bronze_pb2_grpc.BronzeServiceStub(channel)


def upload(store: ObjectStore, job: JobKey, name: str, data: bytes) -> str:
    key = landing_prefix(job) + name
    store.put_bytes(key, data, content_type="text/csv")
    return key


def ingest(
    stub: bronze_pb2_grpc.BronzeServiceStub, job: JobKey, timeout: float = 60, **fields: object
) -> common_pb2.LayerResult:
    csv = fields.pop("csv", None)
    request = bronze_pb2.IngestRequest(
        job=common_pb2.JobRef(workflow_id=job.workflow_id, job_id=job.job_id),
        csv=csv,  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )
    return stub.Ingest(request, timeout=timeout)


def read_objects(store: ObjectStore, objects: object) -> pl.DataFrame:
    """The rows of these data files, read one by one (not through the table)."""
    frames = [pl.read_parquet(io.BytesIO(store.get_bytes(o.key))) for o in objects]  # type: ignore[attr-defined]
    return pl.concat(frames, how="diagonal") if frames else pl.DataFrame()


def bronze_rows(settings: Settings, job: JobKey, version: int | None = None) -> pl.DataFrame:
    """The bronze table's rows (at `version`, else the latest), as any Delta reader sees them."""
    uri = TableRef.bronze(job).uri(settings)
    return pl.read_delta(uri, version=version, storage_options=tables.polars_options(settings))


def rejected_rows(settings: Settings, job: JobKey, version: int | None = None) -> pl.DataFrame:
    uri = TableRef.bronze_rejects(job).uri(settings)
    return pl.read_delta(uri, version=version, storage_options=tables.polars_options(settings))


def bronze_table(settings: Settings, job: JobKey) -> DeltaTable:
    return tables.require(settings, TableRef.bronze(job), "bronze")


def committed_keys(settings: Settings, job: JobKey) -> set[str]:
    """The object keys of the bronze table's current data files."""
    bucket = f"s3://{settings.s3_bucket}/"
    return {uri.removeprefix(bucket) for uri in bronze_table(settings, job).file_uris()}


def serving(channel: grpc.Channel) -> bool:
    response = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="flowforge.v1.BronzeService"), timeout=5
    )
    return response.status == health_pb2.HealthCheckResponse.SERVING


def nothing_left_reading() -> bool:
    """No thread fetches an object or waits on a stream: no s3-prefetch thread, and no
    thread (RPC workers and Arrow's I/O threads included) in a pipe or in bronze's code."""
    prefetching = [t for t in threading.enumerate() if t.name == "s3-prefetch"]
    return not (prefetching or threads_in("flowforge/pipes.py") or threads_in("services/bronze/"))
