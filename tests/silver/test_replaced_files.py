"""Silver after bronze replaced or forgot a landing file: the bronze commit removed rows, so
silver rebuilds from all of bronze (whatever the commit's operation says) and holds exactly
the rows of the landing files as they are now."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import grpc
import pytest

from flowforge import tables
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from flowforge.v1 import bronze_pb2_grpc, silver_pb2_grpc
from services.layers import create_server
from tests.bronze.conftest import ingest, upload
from tests.silver.conftest import refine

FIRST = {"a.csv": b"id,name\n1,ada\n2,alan\n", "b.csv": b"id,name\n3,grace\n4,linus\n"}
SECOND = {"b.csv": b"id,name\n5,hedy\n", "c.csv": b"id,name\n6,tim\n7,edsger\n"}


def ids(files: dict[str, bytes]) -> set[int]:
    """The ids of every row of these CSV files: the csv module's reading."""
    rows = [row for data in files.values() for row in csv.DictReader(io.StringIO(data.decode()))]
    return {int(row["id"]) for row in rows}


@pytest.fixture(scope="module")
def bronze(settings: Settings, store: ObjectStore) -> Iterator[bronze_pb2_grpc.BronzeServiceStub]:
    """The real bronze service: its commits are what silver must read right."""
    server = create_server("bronze", settings, "127.0.0.1:0", store)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield bronze_pb2_grpc.BronzeServiceStub(channel)
    server.stop(0)


def silver_ids(settings: Settings, job: JobKey) -> set[int]:
    table = tables.require(settings, TableRef.silver(job), "silver")
    return {int(v) for v in table.to_pyarrow_table(columns=["id"]).column("id").to_pylist()}


def test_a_reuploaded_file_makes_silver_rebuild_with_its_new_rows(
    bronze: bronze_pb2_grpc.BronzeServiceStub,
    silver: silver_pb2_grpc.SilverServiceStub,
    store: ObjectStore,
    settings: Settings,
    job: JobKey,
) -> None:
    for name, data in FIRST.items():
        upload(store, job, name, data)
    ingest(bronze, job, run_id="b1")
    refine(silver, job, run_id="s1")
    for name, data in SECOND.items():
        upload(store, job, name, data)  # b.csv replaced, c.csv new
    ingest(bronze, job, run_id="b2")
    result = refine(silver, job, run_id="s2")
    assert result.refresh == "full", result.refresh_reason
    assert "removed" in result.refresh_reason
    assert silver_ids(settings, job) == ids({**FIRST, **SECOND})


def test_a_new_file_is_merged_incrementally_from_bronzes_real_commits(
    bronze: bronze_pb2_grpc.BronzeServiceStub,
    silver: silver_pb2_grpc.SilverServiceStub,
    store: ObjectStore,
    settings: Settings,
    job: JobKey,
) -> None:
    """Bronze's own commits (files it wrote, committed by their add actions) carry no
    operation metrics: silver counts what they added from the actions' statistics."""
    upload(store, job, "a.csv", FIRST["a.csv"])
    ingest(bronze, job, run_id="b1")
    refine(silver, job, run_id="s1")
    upload(store, job, "c.csv", SECOND["c.csv"])
    ingest(bronze, job, run_id="b2")
    result = refine(silver, job, run_id="s2")
    assert result.refresh == "incremental", result.refresh_reason
    assert result.rows_in == len(ids({"c.csv": SECOND["c.csv"]}))
    assert silver_ids(settings, job) == ids({"a.csv": FIRST["a.csv"], "c.csv": SECOND["c.csv"]})
