"""Fixtures for gold: a real server on loopback, committed silver inputs and result readers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flowforge import tables
from flowforge.layout import JobKey
from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
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


@dataclass(frozen=True)
class Committed:
    """A version a test committed: the table, its version and the files it holds."""

    ref: TableRef
    version: int
    run_id: str
    keys: list[str]


def commit_table(
    settings: Settings, ref: TableRef, *parts: pl.DataFrame, run_id: str, inputs: dict[str, Any]
) -> Committed:
    """Overwrites the table with these frames (a file each) in one commit, as its layer
    does: the run id and what was read in the commit's metadata."""
    uri, options = ref.uri(settings), tables.storage_options(settings)
    frames = [p for p in parts if p.height] or list(parts[:1])
    for i, frame in enumerate(frames):
        write_deltalake(
            uri,
            frame.to_arrow(),
            mode="overwrite" if i == 0 else "append",
            schema_mode="overwrite" if i == 0 else None,
            storage_options=options,
            commit_properties=tables.commit_properties(run_id, inputs=inputs)
            if i == len(frames) - 1
            else None,
        )
    table = DeltaTable(uri, storage_options=options)
    bucket = f"s3://{settings.s3_bucket}/"
    keys = [url.removeprefix(bucket) for url in table.file_uris()]
    return Committed(ref, table.version(), run_id, keys)


def commit_silver(
    settings: Settings, job: JobKey, *parts: pl.DataFrame, run_id: str = "silver-1"
) -> Committed:
    """Commits frames as the job's silver table (silver's own writer is another module's:
    this is its commit as gold reads it, the run id in the commit's metadata)."""
    inputs = {"bronze": {"version": 0, "run_id": run_id}}
    return commit_table(settings, TableRef.silver(job), *parts, run_id=run_id, inputs=inputs)


def commit_dimension(
    settings: Settings, name: str, frame: pl.DataFrame, run_id: str = "dimension-1"
) -> Committed:
    inputs = {"file": f"{name}.csv", "format": "csv"}
    return commit_table(settings, TableRef.dimension(name), frame, run_id=run_id, inputs=inputs)


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


def read_model(settings: Settings, result: common_pb2.LayerResult, name: str) -> pl.DataFrame:
    """The model's table at the version the result committed (as any Delta reader sees it)."""
    (output,) = [m for m in result.models if m.name == name]
    return pl.read_delta(
        TableRef(output.table).uri(settings),
        version=output.version,
        storage_options=tables.polars_options(settings),
    )


def preview(result: common_pb2.LayerResult, name: str) -> list[dict[str, Any]]:
    (output,) = [m for m in result.models if m.name == name]
    return json.loads(output.preview_json)  # type: ignore[no-any-return]


def gold_objects(store: ObjectStore, job: JobKey) -> list[str]:
    """Every object under the job's model tables: their files and logs."""
    return [o.key for o in store.list(f"gold/{job.workflow_id}/{job.job_id}/")]


def serving(channel: grpc.Channel) -> bool:
    response = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="flowforge.v1.GoldService"), timeout=5
    )
    return response.status == health_pb2.HealthCheckResponse.SERVING


def build_workflow(
    stub: gold_pb2_grpc.GoldServiceStub,
    workflow_id: str,
    models: dict[str, str],
    jobs: list[str],
    failed_jobs: tuple[str, ...] = (),
    timeout: float = 120,
    **spec: Any,
) -> common_pb2.LayerResult:
    request = gold_pb2.BuildWorkflowRequest(
        workflow_id=workflow_id,
        run_id=spec.pop("run_id", ""),
        spec=gold_pb2.WorkflowGoldSpec(
            models=[gold_pb2.Model(name=n, sql=s) for n, s in models.items()], **spec
        ),
        jobs=jobs,
        failed_jobs=failed_jobs,
    )
    return stub.BuildWorkflow(request, timeout=timeout)
