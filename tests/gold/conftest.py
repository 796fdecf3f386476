"""Fixtures for gold: a real server on loopback, committed silver inputs and result readers."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import grpc
import polars as pl
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flowforge.layout import Dataset, JobKey
from flowforge.manifest import Manifest, commit, read_committed, start_run
from flowforge.parts import write_parquet
from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import common_pb2, gold_pb2, gold_pb2_grpc
from services.layers import create_server


@pytest.fixture(scope="module")
def gold_server(settings: Settings, store: ObjectStore) -> Iterator[LayerServer]:
    server = create_server("gold", settings, "127.0.0.1:0", store)
    yield server
    server.stop(0)


@pytest.fixture(scope="module")
def channel(gold_server: LayerServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{gold_server.port}") as ch:
        yield ch


@pytest.fixture
def gold(channel: grpc.Channel) -> gold_pb2_grpc.GoldServiceStub:
    return gold_pb2_grpc.GoldServiceStub(channel)


def commit_silver(
    store: ObjectStore, job: JobKey, *parts: pl.DataFrame, run_id: str = "silver-1"
) -> Manifest:
    """Commits frames as the job's silver output, through the manifest protocol silver uses."""
    dataset = Dataset.for_layer("silver", job)
    previous = read_committed(store, dataset)
    prefix = start_run(store, dataset, run_id, previous)
    objects = [
        write_parquet(store, f"{prefix}part-{i:05d}.parquet", frame)
        for i, frame in enumerate(parts)
    ]
    manifest = Manifest(dataset=dataset.prefix, run_id=run_id, data_objects=objects)
    commit(store, dataset, manifest, previous)
    return manifest


def build(
    stub: gold_pb2_grpc.GoldServiceStub,
    job: JobKey,
    models: dict[str, str] | None = None,
    timeout: float = 120,
    **spec: Any,
) -> common_pb2.LayerResult:
    request = gold_pb2.BuildRequest(
        job=common_pb2.JobRef(workflow_id=job.workflow_id, job_id=job.job_id),
        run_id=spec.pop("run_id", ""),
        spec=gold_pb2.GoldSpec(
            models=[gold_pb2.Model(name=n, sql=s) for n, s in (models or {}).items()], **spec
        ),
    )
    return stub.Build(request, timeout=timeout)


def read_model(store: ObjectStore, result: common_pb2.LayerResult, name: str) -> pl.DataFrame:
    (output,) = [m for m in result.models if m.name == name]
    return pl.read_parquet(io.BytesIO(store.get_bytes(output.key)))


def preview(result: common_pb2.LayerResult, name: str) -> list[dict[str, Any]]:
    (output,) = [m for m in result.models if m.name == name]
    return json.loads(output.preview_json)  # type: ignore[no-any-return]


def serving(channel: grpc.Channel) -> bool:
    response = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="flowforge.v1.GoldService"), timeout=5
    )
    return response.status == health_pb2.HealthCheckResponse.SERVING
