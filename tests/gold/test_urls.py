"""Object keys with `.`/`..` segments or escaped separators never reach DuckDB.

DuckDB's allowed_paths and allowed_directories compare URLs as text, so
`.../run=R/../../silver/<other workflow>/...` passes a lock on `.../run=R/`; the store
then resolves it to another tenant's object. Such URLs are refused before DuckDB sees one,
and a table's log naming a file outside the table's own folder is not followed.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import grpc
import polars as pl
import pytest
from deltalake import DeltaTable, TableFeatures, write_deltalake
from deltalake.transaction import AddAction

from flowforge import tables
from flowforge.duckdb_s3 import checked_url, read_parquet_sql
from flowforge.errors import FailedPrecondition
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from services.gold.engine import GoldSession, Inputs, Source
from tests.gold.conftest import build, commit_silver, serving

CLIMBING = [
    "s3://b/gold/wf/job/run=R/../../../../silver/tenant-b/job/run=s1/part-00000.parquet",
    "s3://b/gold/wf/job/run=R/..",
    "s3://b/silver/wf/./job/part.parquet",
    "s3://b/gold/wf/job/run=R/%2e%2e/%2E%2E/silver/part.parquet",
    "s3://b/gold/wf/job/run=R/..%2F..%2fsilver/part.parquet",
    "s3://b/gold/wf/job/run=R/..%5c..%5Csilver/part.parquet",
    "s3://b/gold/wf/job/run=R/..\\..\\silver/part.parquet",
    "s3://b/silver/wf/job/part.parquet?s3_endpoint=elsewhere",
    "/tmp/gold-spill/../../etc/passwd",
]
PLAIN = [
    "s3://b/silver/wf/job/run=s1/part-00000.parquet",
    "s3://b/gold/wf/job/run=r-1.2/",
    "s3://b/dimensions/countries/run=a..b/part-00000.parquet",
    "/tmp/gold-spill/build-abc",
]


@pytest.mark.parametrize("url", CLIMBING)
def test_climbing_or_escaped_urls_are_refused(url: str) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        checked_url(url)
    assert repr(url) in caught.value.message
    with pytest.raises(FailedPrecondition):
        read_parquet_sql([PLAIN[0], url])


@pytest.mark.parametrize("url", PLAIN)
def test_plain_urls_pass(url: str) -> None:
    assert checked_url(url) == url


def test_the_session_refuses_climbing_keys_before_duckdb_reads_them(
    settings: Settings, job: JobKey, tmp_path: Path
) -> None:
    other = JobKey(f"wf-{uuid.uuid4().hex[:10]}", "job")
    stolen = commit_silver(settings, other, pl.DataFrame({"secret": ["tenant-b"]}))
    table = TableRef.gold_model(job, "m")
    climbing = f"{table.prefix}../../../../../{stolen.keys[0]}"
    with pytest.raises(FailedPrecondition) as caught:
        GoldSession(settings, Inputs({"silver": Source([climbing])}), tmp_path / "a").__enter__()
    assert climbing in caught.value.message
    output = f"{table.prefix}../part-x.parquet"
    with pytest.raises(FailedPrecondition) as caught:
        GoldSession(settings, Inputs({}, [output]), tmp_path / "b").__enter__()
    assert "'..'" in caught.value.message


@pytest.mark.parametrize("shape", ["absolute", "climbing"])
def test_a_log_naming_a_file_outside_the_table_fails_the_build(
    gold, channel, settings: Settings, store: ObjectStore, job: JobKey, shape: str
) -> None:
    """A silver log whose add action names another tenant's file (an absolute URL, or a
    relative path climbing out) is refused: gold reads only files inside the table."""
    other = JobKey(f"wf-{uuid.uuid4().hex[:10]}", "job")
    stolen = commit_silver(settings, other, pl.DataFrame({"secret": ["tenant-b"]}))
    commit_silver(settings, job, pl.DataFrame({"secret": ["own"]}))
    silver = TableRef.silver(job)
    path = (
        f"s3://{settings.s3_bucket}/{stolen.keys[0]}"
        if shape == "absolute"
        else f"../../{other.workflow_id}/job/{stolen.keys[0].rsplit('/', 1)[1]}"
    )
    size = store.head(stolen.keys[0]).size  # type: ignore[union-attr]
    table = DeltaTable(silver.uri(settings), storage_options=tables.storage_options(settings))
    schema = table.schema().to_arrow()
    action = AddAction(path, size, {}, int(time.time() * 1000), True, json.dumps({"numRecords": 1}))
    table.create_write_transaction([action], "overwrite", schema)
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"all": "SELECT * FROM silver"}, skip_profile=True)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "tenant-b" not in caught.value.details()
    assert f"silver of job {job}: the table's log names the file" in caught.value.details()
    assert "outside s3://" in caught.value.details(), caught.value.details()
    assert tables.load(settings, TableRef.gold_model(job, "all")) is None
    assert serving(channel)


@pytest.mark.parametrize("shape", ["deletion_vectors", "partitioned"])
def test_a_silver_table_read_parquet_cannot_honour_is_refused(
    gold, channel, settings: Settings, job: JobKey, shape: str
) -> None:
    """Deletion vectors (rows a file still holds but the table no longer has) and partition
    values (held in paths, not files) change what the files mean: such a table is refused
    rather than read wrongly."""
    frame = pl.DataFrame({"region": ["N", "S"], "n": [1, 2]})
    ref, options = TableRef.silver(job), tables.storage_options(settings)
    partition_by = ["region"] if shape == "partitioned" else None
    write_deltalake(
        ref.uri(settings), frame.to_arrow(), partition_by=partition_by, storage_options=options
    )
    if shape == "deletion_vectors":
        DeltaTable(ref.uri(settings), storage_options=options).alter.add_feature(
            TableFeatures.DeletionVectors, allow_protocol_versions_increase=True
        )
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"all": "SELECT * FROM silver"}, skip_profile=True)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    reason = "deletionVectors" if shape == "deletion_vectors" else "is partitioned"
    assert f"table silver/{job.workflow_id}/{job.job_id}" in caught.value.details()
    assert reason in caught.value.details()
    assert tables.load(settings, TableRef.gold_model(job, "all")) is None
    assert serving(channel)
