"""Object keys with `.`/`..` segments or escaped separators never reach DuckDB.

DuckDB's allowed_paths and allowed_directories compare URLs as text, so
`.../run=R/../../silver/<other workflow>/...` passes a lock on `.../run=R/`; the store
then resolves it to another tenant's object. Such URLs are refused before DuckDB sees one.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import polars as pl
import pytest

from flowforge.duckdb_s3 import checked_url, read_parquet_sql
from flowforge.errors import FailedPrecondition
from flowforge.layout import Dataset, JobKey
from flowforge.manifest import Manifest, ManifestObject, commit, read_committed
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from services.gold.engine import GoldSession, Inputs
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
    settings: Settings, store: ObjectStore, job: JobKey, tmp_path: Path
) -> None:
    other = JobKey(f"wf-{uuid.uuid4().hex[:10]}", "job")
    stolen = commit_silver(store, other, pl.DataFrame({"secret": ["tenant-b"]}))
    output = Dataset.for_layer("gold", job).run_prefix("r1")
    climbing = f"{output}../../../../{stolen.data_objects[0].key}"
    with pytest.raises(FailedPrecondition) as caught:
        GoldSession(settings, Inputs([climbing], {}), output, tmp_path / "a").__enter__()
    assert climbing in caught.value.message
    with pytest.raises(FailedPrecondition) as caught:
        GoldSession(settings, Inputs([], {}), f"{output}../../", tmp_path / "b").__enter__()
    assert "'..'" in caught.value.message


def test_a_manifest_listing_a_climbing_key_fails_the_build(
    gold, channel, store: ObjectStore, job: JobKey
) -> None:
    other = JobKey(f"wf-{uuid.uuid4().hex[:10]}", "job")
    stolen = commit_silver(store, other, pl.DataFrame({"secret": ["tenant-b"]}))
    silver = Dataset.for_layer("silver", job)
    climbing = f"{silver.run_prefix('s1')}../../../../{stolen.data_objects[0].key}"
    manifest = Manifest(
        dataset=silver.prefix,
        run_id="s1",
        data_objects=[ManifestObject(key=climbing, size_bytes=1, rows=1)],
    )
    commit(store, silver, manifest, None)
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"all": "SELECT * FROM silver"}, skip_profile=True)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert climbing in caught.value.details()
    assert "tenant-b" not in caught.value.details()
    assert read_committed(store, Dataset.for_layer("gold", job)) is None
    assert serving(channel)
