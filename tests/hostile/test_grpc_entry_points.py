"""Every gRPC entry point refuses path-like input with INVALID_ARGUMENT naming the field,
before touching the object store, and keeps serving.

One parametrized test per RPC; the values come from tests/hostile/path_inputs.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import (
    bronze_pb2,
    bronze_pb2_grpc,
    common_pb2,
    gold_pb2,
    gold_pb2_grpc,
    silver_pb2,
    silver_pb2_grpc,
)
from services.layers import create_server
from tests.hostile.path_inputs import HOSTILE, MAX_ID_CHARS, cases

create_bronze = partial(create_server, "bronze")
create_gold = partial(create_server, "gold")
create_silver = partial(create_server, "silver")

Factory = Callable[[Settings, str, ObjectStore], LayerServer]


def _params(fields: list[str], run_field: str = "run_id") -> list[Any]:
    return [
        pytest.param(f, v, id=f"{f}-{label}")
        for f, label, v in cases(fields) + cases([run_field], allow_empty=True)
    ]


@pytest.fixture(scope="module")
def channels(settings: Settings, store: ObjectStore) -> Iterator[dict[str, grpc.Channel]]:
    factories: dict[str, Factory] = {
        "bronze": create_bronze,
        "silver": create_silver,
        "gold": create_gold,
    }
    servers = {name: make(settings, "127.0.0.1:0", store) for name, make in factories.items()}
    opened = {n: grpc.insecure_channel(f"127.0.0.1:{s.port}") for n, s in servers.items()}
    yield opened
    for channel in opened.values():
        channel.close()
    for server in servers.values():
        server.stop(0)


def _job(field: str, value: str) -> common_pb2.JobRef:
    job = common_pb2.JobRef(workflow_id="hostile-wf", job_id="hostile-job")
    if field in ("job.workflow_id", "job.job_id"):
        setattr(job, field.split(".")[1], value)
    return job


def _assert_refused(call: Callable[[], Any], field: str, channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert info.value.details().startswith(field + " "), info.value.details()
    assert len(info.value.details()) < 400  # an overlong value is shortened, not echoed
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


BRONZE_FIELDS = ["job.workflow_id", "job.job_id"]
SILVER_FIELDS = ["job.workflow_id", "job.job_id"]
GOLD_FIELDS = ["job.workflow_id", "job.job_id", "spec.models[0].name", "spec.dimensions[0]"]
WORKFLOW_FIELDS = ["workflow_id", "jobs[0]", "spec.models[0].name", "spec.dimensions[0]"]


def ingest(channels: dict[str, grpc.Channel], field: str, value: str) -> Callable[[], Any]:
    stub = bronze_pb2_grpc.BronzeServiceStub(channels["bronze"])
    request = bronze_pb2.IngestRequest(
        job=_job(field, value), run_id=value if field == "run_id" else ""
    )
    return lambda: stub.Ingest(request, timeout=10)


def refine(channels: dict[str, grpc.Channel], field: str, value: str) -> Callable[[], Any]:
    stub = silver_pb2_grpc.SilverServiceStub(channels["silver"])
    request = silver_pb2.RefineRequest(
        job=_job(field, value), run_id=value if field == "run_id" else ""
    )
    return lambda: stub.Refine(request, timeout=10)


def build(channels: dict[str, grpc.Channel], field: str, value: str) -> Callable[[], Any]:
    stub = gold_pb2_grpc.GoldServiceStub(channels["gold"])
    model = value if field == "spec.models[0].name" else "orders"
    request = gold_pb2.BuildRequest(
        job=_job(field, value),
        run_id=value if field == "run_id" else "",
        spec=gold_pb2.GoldSpec(
            models=[gold_pb2.Model(name=model, sql="SELECT 1 AS one")],
            dimensions=[value if field == "spec.dimensions[0]" else "countries"],
        ),
    )
    return lambda: stub.Build(request, timeout=10)


def build_workflow(channels: dict[str, grpc.Channel], field: str, value: str) -> Callable[[], Any]:
    stub = gold_pb2_grpc.GoldServiceStub(channels["gold"])
    request = gold_pb2.BuildWorkflowRequest(
        workflow_id=value if field == "workflow_id" else "hostile-wf",
        run_id=value if field == "run_id" else "",
        jobs=[value if field == "jobs[0]" else "orders"],
        spec=gold_pb2.WorkflowGoldSpec(
            models=[
                gold_pb2.Model(
                    name=value if field == "spec.models[0].name" else "totals",
                    sql="SELECT count(*) AS n FROM silver.orders",
                )
            ],
            dimensions=[value if field == "spec.dimensions[0]" else "countries"],
        ),
    )
    return lambda: stub.BuildWorkflow(request, timeout=10)


@pytest.mark.parametrize(("field", "value"), _params(BRONZE_FIELDS))
def test_bronze_ingest_refuses(channels: dict[str, grpc.Channel], field: str, value: str) -> None:
    _assert_refused(ingest(channels, field, value), field, channels["bronze"])


@pytest.mark.parametrize(("field", "value"), _params(SILVER_FIELDS))
def test_silver_refine_refuses(channels: dict[str, grpc.Channel], field: str, value: str) -> None:
    _assert_refused(refine(channels, field, value), field, channels["silver"])


@pytest.mark.parametrize(("field", "value"), _params(GOLD_FIELDS))
def test_gold_build_refuses(channels: dict[str, grpc.Channel], field: str, value: str) -> None:
    _assert_refused(build(channels, field, value), field, channels["gold"])


@pytest.mark.parametrize(("field", "value"), _params(WORKFLOW_FIELDS))
def test_gold_build_workflow_refuses(
    channels: dict[str, grpc.Channel], field: str, value: str
) -> None:
    _assert_refused(build_workflow(channels, field, value), field, channels["gold"])


def test_longest_valid_id_still_accepted(channels: dict[str, grpc.Channel]) -> None:
    """The refusals above are not a blanket one: a 64-character ID reaches the store."""
    stub = bronze_pb2_grpc.BronzeServiceStub(channels["bronze"])
    longest = "w" + "-_9" * ((MAX_ID_CHARS - 1) // 3)
    assert len(longest) == MAX_ID_CHARS
    request = bronze_pb2.IngestRequest(job=common_pb2.JobRef(workflow_id=longest, job_id="j"))
    with pytest.raises(grpc.RpcError) as info:
        stub.Ingest(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND  # no CSV there: it was looked up


def test_no_object_key_holds_a_hostile_value(
    channels: dict[str, grpc.Channel], store: ObjectStore
) -> None:
    """Every hostile value sent to every entry point, then nothing was written under any
    hostile name (on its own: it does not rely on the tests above having run first)."""
    calls = (
        (ingest, BRONZE_FIELDS),
        (refine, SILVER_FIELDS),
        (build, GOLD_FIELDS),
        (build_workflow, WORKFLOW_FIELDS),
    )
    for call, fields in calls:
        for param in _params(fields):
            field, value = param.values
            with pytest.raises(grpc.RpcError):
                call(channels, str(field), str(value))()
    keys = [o.key for o in store.list("")]
    for _, value in HOSTILE:
        if value and len(value) < 200:
            for key in keys:
                for form in (f"/{value}/", f"={value}/", f"/{value}.parquet"):
                    assert form not in key, key
