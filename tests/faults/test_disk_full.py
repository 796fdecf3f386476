"""The disk a service spills to fills up (a real 16 MB tmpfs): RESOURCE_EXHAUSTED with a
clear message, nothing committed, the previous output untouched, the next request served."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import grpc
import polars as pl
import pytest

from flowforge import tables
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from flowforge.v1 import gold_pb2_grpc, silver_pb2_grpc
from services.layers import create_server
from tests.faults.disk import fill, small_tmpfs
from tests.gold.conftest import build, commit_silver, gold_objects
from tests.gold.conftest import serving as gold_serving
from tests.silver.conftest import fill_bronze, refine
from tests.silver.conftest import serving as silver_serving

create_gold = partial(create_server, "gold")
create_silver = partial(create_server, "silver")

MANY_GROUPS = (  # a hash table of about 300 MB: beyond 100 MB of memory, so DuckDB spills
    "SELECT count(*) AS groups FROM (SELECT md5(i::VARCHAR) AS h, count(*) AS n "
    "FROM silver, range(3000000) AS r(i) GROUP BY h)"
)


@pytest.fixture
def spill_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "spill", "64m") as mounted:
        yield mounted


def _random_csv(rows: int) -> bytes:
    noise = os.urandom(rows * 24).hex()  # incompressible, so spilled files stay large
    lines = [f"{i},{noise[i * 48 : i * 48 + 48]}" for i in range(rows)]
    return ("id,payload\n" + "\n".join(lines) + "\n").encode()


def test_silver_spill_disk_full(
    settings: Settings, store: ObjectStore, job: JobKey, spill_disk: Path
) -> None:
    # A 1 MB memory budget: silver splits the kept rows into buckets on the spill disk.
    tight = settings.model_copy(
        update={"silver_spill_dir": spill_disk, "silver_memory_limit_mb": 1}
    )
    server = create_silver(tight, "127.0.0.1:0", store)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = silver_pb2_grpc.SilverServiceStub(channel)
            fill_bronze(store, settings, job, _random_csv(1000), run_id="b1")
            first = refine(stub, job, run_id="s1")
            assert first.rows_out == 1000
            filler = fill(spill_disk, leave_bytes=256 << 10)
            fill_bronze(store, settings, job, _random_csv(200_000), run_id="b2")
            with pytest.raises(grpc.RpcError) as caught:
                refine(stub, job, run_id="s2")
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            details = caught.value.details()
            assert details.startswith("silver ran out of disk space while "), details
            assert "FLOWFORGE_SILVER_SPILL_DIR" in details and "No space left" in details
            committed = tables.require(settings, TableRef.silver(job), "silver")
            assert tables.history(committed, 1)[0].run_id == "s1"  # nothing else committed
            assert sorted(os.listdir(spill_disk)) == ["filler"]  # its workspace went too
            assert silver_serving(channel)
            filler.unlink()  # space again: the same server takes the retry
            retried = refine(stub, job, run_id="s2")
            # Too big a batch to merge in 1 MB: silver rebuilds from all of bronze.
            assert (retried.refresh, retried.rows_out) == ("full", 1000 + 200_000)
    finally:
        server.stop(0)
    committed = tables.require(settings, TableRef.silver(job), "silver")
    assert tables.history(committed, 1)[0].run_id == "s2"


def test_gold_spill_disk_full(
    settings: Settings, store: ObjectStore, job: JobKey, spill_disk: Path
) -> None:
    tight = settings.model_copy(
        update={"gold_memory_limit": "100MB", "gold_threads": 1, "gold_temp_directory": spill_disk}
    )
    server = create_gold(tight, "127.0.0.1:0", store)
    commit_silver(settings, job, pl.DataFrame({"x": [1]}))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = gold_pb2_grpc.GoldServiceStub(channel)
            first = build(stub, job, {"one": "SELECT 1 AS one"}, skip_profile=True, run_id="g1")
            with pytest.raises(grpc.RpcError) as caught:
                build(stub, job, {"groups": MANY_GROUPS}, skip_profile=True, run_id="g2")
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            details = caught.value.details()
            assert details.startswith("model 'groups' needs more memory or spill space"), details
            assert "FLOWFORGE_GOLD_MEMORY_LIMIT=100MB" in details
            assert f"FLOWFORGE_GOLD_TEMP_DIRECTORY={spill_disk}" in details
            (one,) = first.models
            table = tables.require(settings, TableRef(one.table), "one")
            assert table.version() == one.version  # nothing committed since
            assert tables.load(settings, TableRef.gold_model(job, "groups")) is None
            assert gold_objects(store, job) == [o.key for o in store.list(f"{one.table}/")]
            assert os.listdir(spill_disk) == []  # the build's spill folder went with it
            assert gold_serving(channel)
            after = build(stub, job, {"two": "SELECT 2 AS two"}, skip_profile=True, run_id="g3")
            assert after.models[0].rows == 1
    finally:
        server.stop(0)
