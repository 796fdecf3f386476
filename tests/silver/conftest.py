"""Fixtures for silver: a real server on loopback and helpers to fill bronze and read silver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import polars as pl
import pyarrow as pa
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flowforge import tables
from flowforge.layout import JobKey
from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import common_pb2, silver_pb2, silver_pb2_grpc
from services.bronze.options import CsvOptions
from services.layers import LAYER_SERVICES, create_server
from tests.silver.bronze_table import BronzeCommit, write_bronze

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
) -> BronzeCommit:
    """Commits one CSV's rows to bronze's table (no bronze server needed here); of the
    CSV options only the delimiter is read."""
    delimiter = options.delimiter if options is not None and options.delimiter else ","
    return write_bronze(settings, job, data, run_id, delimiter=delimiter)


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


def read_table(
    settings: Settings, ref: tables.TableRef, version: int | None = None
) -> pl.DataFrame:
    """A table's rows at a version (the latest by default); empty when there is no table."""
    table = tables.load(settings, ref, version)
    if table is None:
        return pl.DataFrame()
    frame = pl.from_arrow(pa.table(table.to_pyarrow_table()))
    assert isinstance(frame, pl.DataFrame)
    return frame


def read_silver(settings: Settings, job: JobKey) -> pl.DataFrame:
    return read_table(settings, tables.TableRef.silver(job))


def read_quarantine(settings: Settings, job: JobKey) -> pl.DataFrame:
    return read_table(settings, tables.TableRef.silver_quarantine(job))


def silver_objects(store: ObjectStore, job: JobKey) -> list[str]:
    """Every object of the job's silver and quarantine tables (data files and logs)."""
    refs = (tables.TableRef.silver(job), tables.TableRef.silver_quarantine(job))
    return sorted(o.key for ref in refs for o in store.list(ref.prefix))


def serving(channel: grpc.Channel) -> bool:
    response = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5
    )
    return response.status == health_pb2.HealthCheckResponse.SERVING
