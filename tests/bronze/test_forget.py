"""A landing file deleted from landing stays in bronze until a run forgets it: then its rows
and rejects leave bronze's tables in that run's commit, and the files report says so."""

from __future__ import annotations

import csv
import io

import grpc
import pytest

from flowforge.layout import JobKey, landing_prefix
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2_grpc
from tests.bronze.conftest import bronze_rows, ingest, rejected_rows, upload

KEEP = b"id,name\n1,ada\n2,alan\n"
GONE = b"id,name\n3,grace\n4,linus\n5,margaret,extra\n"  # 2 rows, 1 reject


def data_rows(data: bytes) -> tuple[int, int]:
    """(rows with the header's field count, rows without): the csv module's count."""
    header, *records = list(csv.reader(io.StringIO(data.decode())))
    good = sum(1 for r in records if len(r) == len(header))
    return good, len(records) - good


def test_a_deleted_file_stays_until_a_run_forgets_it(
    bronze: bronze_pb2_grpc.BronzeServiceStub, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    upload(store, job, "keep.csv", KEEP)
    gone_key = upload(store, job, "gone.csv", GONE)
    ingest(bronze, job, run_id="r1")
    store.delete_keys([gone_key])

    unchanged = ingest(bronze, job, run_id="r2")  # deleted, not forgotten: its rows stay
    assert unchanged.total_rows == data_rows(KEEP)[0] + data_rows(GONE)[0]

    forgot = ingest(bronze, job, run_id="r3", forget=["gone.csv"])
    (report,) = [f for f in forgot.files if f.key == gone_key]
    assert (report.status, report.rows, report.rows_rejected) == ("FORGOTTEN", *data_rows(GONE))
    assert (forgot.rows_in, forgot.rows_out) == (0, 0)  # nothing was read
    assert forgot.total_rows == data_rows(KEEP)[0]
    assert set(bronze_rows(settings, job)["_source_key"]) == {landing_prefix(job) + "keep.csv"}
    assert gone_key not in set(rejected_rows(settings, job)["source_key"])


def test_a_file_still_in_landing_cannot_be_forgotten(
    bronze: bronze_pb2_grpc.BronzeServiceStub, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "keep.csv", KEEP)
    ingest(bronze, job, run_id="r1")
    with pytest.raises(grpc.RpcError) as refused:
        ingest(bronze, job, run_id="r2", forget=["keep.csv"])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "forget: 'keep.csv' is still in s3://" in refused.value.details()
    with pytest.raises(grpc.RpcError) as bad:
        ingest(bronze, job, run_id="r3", forget=["../x.csv"])
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.details().startswith("forget[0] '../x.csv' is not a landing file name")


def test_forgetting_the_last_file_empties_bronze(
    bronze: bronze_pb2_grpc.BronzeServiceStub, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    key = upload(store, job, "only.csv", KEEP)
    ingest(bronze, job, run_id="r1")
    store.delete_keys([key])
    forgot = ingest(bronze, job, run_id="r2", forget=["only.csv", "never.csv"])
    assert forgot.total_rows == 0 and bronze_rows(settings, job).height == 0
    assert any("bronze holds nothing of" in w and "never.csv" in w for w in forgot.warnings)
