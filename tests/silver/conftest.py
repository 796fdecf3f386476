"""Fixtures for silver: a real server on loopback and helpers to fill bronze and read silver."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import grpc
import polars as pl
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flowforge.layout import JobKey, landing_prefix
from flowforge.runtime import Deadline, LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import common_pb2, silver_pb2, silver_pb2_grpc
from services.bronze.ingest import IngestPlan
from services.bronze.ingest import ingest as bronze_ingest
from services.bronze.options import CsvOptions
from services.layers import LAYER_SERVICES, create_server

SERVICE_NAME = LAYER_SERVICES["silver"].service_name


@pytest.fixture(scope="module")
def silver_server(settings: Settings, store: ObjectStore) -> Iterator[LayerServer]:
    server = create_server("silver", settings, "127.0.0.1:0", store)
    yield server
    server.stop(0)


@pytest.fixture(scope="module")
def channel(silver_server: LayerServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{silver_server.port}") as ch:
        yield ch


@pytest.fixture
def silver(channel: grpc.Channel) -> silver_pb2_grpc.SilverServiceStub:
    return silver_pb2_grpc.SilverServiceStub(channel)


def fill_bronze(
    store: ObjectStore,
    settings: Settings,
    job: JobKey,
    data: bytes,
    run_id: str = "b1",
    options: CsvOptions | None = None,
) -> common_pb2.LayerResult:
    """Lands one CSV and ingests it with the real bronze code (no server needed here)."""
    store.put_bytes(landing_prefix(job) + "data.csv", data, content_type="text/csv")
    plan = IngestPlan(job, run_id, options or CsvOptions.validated(), full_refresh=True)
    return bronze_ingest(store, settings, plan, Deadline())


def refine(
    stub: silver_pb2_grpc.SilverServiceStub,
    job: JobKey,
    spec: dict[str, Any] | None = None,
    timeout: float = 60,
    **fields: Any,
) -> common_pb2.LayerResult:
    request = silver_pb2.RefineRequest(
        job=common_pb2.JobRef(workflow_id=job.workflow_id, job_id=job.job_id),
        spec=json_format.ParseDict(spec or {}, silver_pb2.SilverSpec()),
        **fields,
    )
    return stub.Refine(request, timeout=timeout)


def read_objects(store: ObjectStore, objects: Any) -> pl.DataFrame:
    frames = [pl.read_parquet(io.BytesIO(store.get_bytes(o.key))) for o in objects]
    return pl.concat(frames, how="diagonal") if frames else pl.DataFrame()


def serving(channel: grpc.Channel) -> bool:
    response = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5
    )
    return response.status == health_pb2.HealthCheckResponse.SERVING
