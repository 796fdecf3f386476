"""Memory, spill and time limits: real queries against a server with small limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import polars as pl
import pytest

from flowforge.layout import Dataset, JobKey
from flowforge.manifest import read_committed
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import gold_pb2_grpc
from services.layers import create_server
from tests.gold.conftest import build, commit_silver, serving

# About 300 MB of hash table: far beyond a 100 MB memory limit, so it must spill.
MANY_GROUPS = (
    "SELECT count(*) AS groups FROM (SELECT md5(i::VARCHAR) AS h, count(*) AS n "
    "FROM silver, range(3000000) AS r(i) GROUP BY h)"
)
ENDLESS = "SELECT count(*) AS n FROM silver, range(1000000000000) AS r(i)"


@pytest.fixture(scope="module")
def limited(
    settings: Settings, store: ObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[gold_pb2_grpc.GoldServiceStub, grpc.Channel, Path]]:
    spill = tmp_path_factory.mktemp("spill")
    tight = settings.model_copy(
        update={
            "gold_memory_limit": "100MB",
            "gold_threads": 1,
            "gold_temp_directory": spill,
            "gold_model_timeout_seconds": 4.0,
        }
    )
    server = create_server("gold", tight, "127.0.0.1:0", store)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield gold_pb2_grpc.GoldServiceStub(channel), channel, spill
    server.stop(0)


@pytest.fixture
def one_row(store: ObjectStore, job: JobKey) -> JobKey:
    commit_silver(store, job, pl.DataFrame({"x": [1]}))
    return job


def test_a_model_beyond_the_memory_limit_spills_and_succeeds(
    limited, store: ObjectStore, one_row: JobKey
) -> None:
    stub, _, spill = limited
    result = build(stub, one_row, {"groups": MANY_GROUPS}, skip_profile=True)
    assert pl.read_parquet(store.get_bytes(result.models[0].key)).item() == 3_000_000
    assert list(spill.iterdir()) == []  # the build's spill folder went with it


def test_running_out_of_spill_space_is_resource_exhausted(
    limited, settings: Settings, store: ObjectStore, one_row: JobKey
) -> None:
    # A separate server: the spill cap is a setting of the build, not of the query.
    capped = settings.model_copy(
        update={"gold_memory_limit": "100MB", "gold_threads": 1, "gold_max_temp_size": "1MB"}
    )
    server = create_server("gold", capped, "127.0.0.1:0", store)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = gold_pb2_grpc.GoldServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                build(stub, one_row, {"groups": MANY_GROUPS}, skip_profile=True)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert caught.value.details().startswith("model 'groups' needs more memory or spill")
            assert "FLOWFORGE_GOLD_MAX_TEMP_SIZE=1MB" in caught.value.details()
            assert serving(channel)
    finally:
        server.stop(0)
    assert read_committed(store, Dataset.for_layer("gold", one_row)) is None


def test_a_model_past_its_time_limit_is_deadline_exceeded(limited, one_row: JobKey) -> None:
    stub, channel, _ = limited
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        build(stub, one_row, {"endless": ENDLESS}, skip_profile=True)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "model 'endless' ran longer than 4s" in caught.value.details()
    assert time.monotonic() - started < 15
    assert serving(channel)


def test_a_caller_that_gives_up_stops_the_query_and_nothing_commits(
    limited, store: ObjectStore, one_row: JobKey
) -> None:
    stub, channel, _ = limited
    with pytest.raises(grpc.RpcError) as caught:
        build(stub, one_row, {"endless": ENDLESS}, skip_profile=True, timeout=1.5)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(1.0)  # the server notices within its watch interval
    assert read_committed(store, Dataset.for_layer("gold", one_row)) is None
    assert list(store.list(Dataset.for_layer("gold", one_row).prefix)) == []
    assert serving(channel)
