"""The bronze service's behaviour over a real channel: table commits, reruns, errors, health."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import grpc
import polars as pl
import pytest

from flowforge import tables
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2, common_pb2
from tests.bronze.conftest import (
    bronze_rows,
    bronze_table,
    committed_keys,
    ingest,
    serving,
    upload,
)

AUDIT_TYPES = {
    "_ingested_at": pl.Datetime("us", "UTC"),
    "_source_key": pl.String,
    "_source_etag": pl.String,
    "_row_number": pl.Int64,
    "_row_hash": pl.Int64,
    "_run_id": pl.String,
    "_workflow_id": pl.String,
    "_job_id": pl.String,
}


def test_ingest_commits_a_table_of_text_with_audit_columns(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    key = upload(store, job, "people.csv", b"id,amount\n1,0010\n2,1e3\n")
    result = ingest(bronze, job, run_id="run-1")
    table = f"bronze/{job.workflow_id}/{job.job_id}"
    assert (result.table, result.table_version) == (table, 0)
    assert (result.side_table, result.side_version) == (
        f"bronze/{job.workflow_id}/_rejects/{job.job_id}",
        0,
    )
    assert result.manifest_key == f"{table}/_delta_log/{0:020d}.json"
    assert store.head(result.manifest_key) is not None  # the commit object itself
    frame = bronze_rows(settings, job)
    assert frame["amount"].to_list() == ["0010", "1e3"]  # text, never parsed
    for name, dtype in AUDIT_TYPES.items():
        assert frame.schema[name] == dtype, name
    assert frame["_row_number"].to_list() == [1, 2]
    assert set(frame["_source_key"]) == {key}
    assert set(frame["_run_id"]) == {"run-1"}
    assert set(frame["_workflow_id"]) == {job.workflow_id}
    assert result.total_rows == frame.height
    delta = bronze_table(settings, job)
    assert delta.metadata().configuration == {"delta.enableChangeDataFeed": "true"}
    (commit,) = tables.history(delta)
    assert commit.run_id == "run-1"
    assert commit.inputs["landing"][0]["etag"] == result.files[0].etag
    assert commit.report is not None and commit.report.rows_out == 2
    assert committed_keys(settings, job) == {o.key for o in result.data_objects}


def test_parquet_is_zstd(bronze, store: ObjectStore, job: JobKey) -> None:
    import pyarrow.parquet as pq

    upload(store, job, "a.csv", b"a\n1\n")
    result = ingest(bronze, job)
    meta = pq.ParquetFile(io.BytesIO(store.get_bytes(result.data_objects[0].key))).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_row_hash_is_stable_and_depends_on_values(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "a.csv", b"a,b\nx,y\nx,y\nxy,\n")
    ingest(bronze, job)
    first = bronze_rows(settings, job).sort("_row_number")
    other = JobKey(job.workflow_id, "again")
    upload(store, other, "b.csv", b"a,b\nx,y\n")
    ingest(bronze, other)
    second = bronze_rows(settings, other)
    hashes = first["_row_hash"].to_list()
    assert hashes[0] == hashes[1] == second["_row_hash"][0]  # same record, same hash
    assert hashes[2] != hashes[0]  # field boundaries matter: "xy","" differs from "x","y"


def test_committed_files_are_skipped_unless_full_refresh(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "a.csv", b"id\n1\n2\n")
    first = ingest(bronze, job, run_id="r1")
    upload(store, job, "b.csv", b"id\n3\n")
    second = ingest(bronze, job, run_id="r2")
    statuses = {f.key.rsplit("/", 1)[1]: f.status for f in second.files}
    assert statuses == {"a.csv": "SKIPPED", "b.csv": "INGESTED"}
    assert (second.rows_in, second.rows_out, second.total_rows) == (1, 1, 3)
    assert second.table_version == first.table_version + 1
    assert sorted(bronze_rows(settings, job)["id"]) == ["1", "2", "3"]

    third = ingest(bronze, job, run_id="r3", full_refresh=True)
    assert [f.status for f in third.files] == ["INGESTED", "INGESTED"]
    assert (third.rows_in, third.total_rows) == (3, 3)
    assert committed_keys(settings, job) == {o.key for o in third.data_objects}
    assert sorted(bronze_rows(settings, job)["id"]) == ["1", "2", "3"]
    # Nothing committed is deleted: the first version is still there to read.
    assert all(store.head(o.key) is not None for o in first.data_objects)
    assert bronze_rows(settings, job, version=first.table_version)["id"].sort().to_list() == [
        "1",
        "2",
    ]


def test_changed_file_is_ingested_again(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "a.csv", b"id\n1\n")
    ingest(bronze, job, run_id="r1")
    upload(store, job, "a.csv", b"id\n1\n2\n")
    result = ingest(bronze, job, run_id="r2")
    assert result.files[0].status == "INGESTED"
    assert result.total_rows == 2
    assert bronze_rows(settings, job)["id"].sort().to_list() == ["1", "2"]


def test_repeating_a_run_id_is_idempotent(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "a.csv", b"id\n1\n")
    first = ingest(bronze, job, run_id="same")
    version = bronze_table(settings, job).version()
    upload(store, job, "b.csv", b"id\n2\n")  # a repeat replays; it does not read again
    again = ingest(bronze, job, run_id="same")
    assert again.reused is True
    assert (again.table_version, again.total_rows) == (first.table_version, first.total_rows)
    assert [o.key for o in again.data_objects] == [o.key for o in first.data_objects]
    assert bronze_table(settings, job).version() == version  # no second commit
    assert bronze_rows(settings, job)["id"].to_list() == ["1"]


def test_an_older_run_id_is_replayed_and_nothing_committed_changes(
    bronze, channel, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    upload(store, job, "a.csv", b"id\n1\n2\n")
    older = ingest(bronze, job, run_id="older")
    upload(store, job, "b.csv", b"id\n3\n")
    newer = ingest(bronze, job, run_id="newer")  # keeps older's file for a.csv
    again = ingest(bronze, job, run_id="older")
    assert again.reused is True and again.table_version == older.table_version
    assert bronze_table(settings, job).version() == newer.table_version
    assert sorted(bronze_rows(settings, job)["id"].to_list()) == ["1", "2", "3"]
    # The service still serves: a new run id commits.
    assert serving(channel)
    upload(store, job, "c.csv", b"id\n4\n")
    assert ingest(bronze, job, run_id="newest").rows_out == 1


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"job": common_pb2.JobRef(workflow_id="../etc", job_id="j")}, "job.workflow_id"),
        ({"job": common_pb2.JobRef(workflow_id="wf", job_id="a/b")}, "job.job_id"),
        ({"job": common_pb2.JobRef(workflow_id="", job_id="j")}, "job.workflow_id is required"),
        ({"job": common_pb2.JobRef(workflow_id="wf%2F..", job_id="j")}, "job.workflow_id"),
        ({"job": common_pb2.JobRef(workflow_id="wf\x00", job_id="j")}, "job.workflow_id"),
        ({"job": common_pb2.JobRef(workflow_id="w" * 65, job_id="j")}, "job.workflow_id"),
        ({"job": common_pb2.JobRef(workflow_id="wf", job_id="j"), "run_id": "run=1/x"}, "run_id"),
        (
            {
                "job": common_pb2.JobRef(workflow_id="wf", job_id="j"),
                "csv": bronze_pb2.CsvOptions(delimiter=";;"),
            },
            "csv.delimiter",
        ),
        (
            {
                "job": common_pb2.JobRef(workflow_id="wf", job_id="j"),
                "csv": bronze_pb2.CsvOptions(quote="\n"),
            },
            "csv.quote",
        ),
        (
            {
                "job": common_pb2.JobRef(workflow_id="wf", job_id="j"),
                "csv": bronze_pb2.CsvOptions(encoding="klingon-8"),
            },
            "csv.encoding",
        ),
        (
            {
                "job": common_pb2.JobRef(workflow_id="wf", job_id="j"),
                "csv": bronze_pb2.CsvOptions(delimiter='"'),
            },
            "csv.delimiter and csv.quote",
        ),
    ],
)
def test_bad_requests_are_invalid_argument(bronze, channel, request_fields, message) -> None:
    with pytest.raises(grpc.RpcError) as info:
        bronze.Ingest(bronze_pb2.IngestRequest(**request_fields), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()
    assert "Traceback" not in info.value.details()
    assert serving(channel)


def test_no_csv_under_landing_is_not_found(
    bronze, channel, store: ObjectStore, job: JobKey
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        ingest(bronze, job)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"landing/{job.workflow_id}/{job.job_id}/" in info.value.details()
    upload(store, job, "notes.txt", b"hello")
    with pytest.raises(grpc.RpcError) as info:
        ingest(bronze, job)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "notes.txt" in info.value.details()
    assert serving(channel)


def test_unreachable_store_is_unavailable(settings, job: JobKey) -> None:
    from flowforge.embedded import pick_ports
    from services.layers import create_server

    dead = settings.model_copy(
        update={
            "s3_endpoint_url": f"http://127.0.0.1:{pick_ports()['s3.port']}",
            "s3_max_attempts": 1,
        }
    )
    server = create_server("bronze", dead, "127.0.0.1:0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            from flowforge.v1 import bronze_pb2_grpc

            with pytest.raises(grpc.RpcError) as info:
                ingest(bronze_pb2_grpc.BronzeServiceStub(channel), job)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "unreachable" in info.value.details()
            assert settings.s3_secret_access_key.get_secret_value() not in info.value.details()
            assert serving(channel)
    finally:
        server.stop(0)


def test_client_deadline_is_honoured(bronze, channel, store: ObjectStore, job: JobKey) -> None:
    upload(store, job, "a.csv", b"id\n" + b"1\n" * 200_000)
    with pytest.raises(grpc.RpcError) as info:
        ingest(bronze, job, timeout=0.05)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert serving(channel)
    # Nothing was committed by the interrupted request; a later one succeeds.
    result = ingest(bronze, job)
    assert (result.rows_out, result.table_version) == (200_000, 0)


def test_sigterm_finishes_in_flight_request(
    settings, store: ObjectStore, job: JobKey, tmp_path: Path
) -> None:
    """A real `flowforge serve bronze` process, stopped with SIGTERM mid-request."""
    import os
    import signal
    import time

    from flowforge.embedded import pick_ports
    from flowforge.v1 import bronze_pb2_grpc

    upload(store, job, "big.csv", b"id,v\n" + b"".join(b"%d,x\n" % i for i in range(1_500_000)))
    port = pick_ports()["s3.port"]
    env = {
        **os.environ,
        "FLOWFORGE_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "FLOWFORGE_S3_ACCESS_KEY_ID": settings.s3_access_key_id,
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key.get_secret_value(),
        "FLOWFORGE_S3_BUCKET": settings.s3_bucket,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "serve",
            "bronze",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = bronze_pb2_grpc.BronzeServiceStub(channel)
            future = stub.Ingest.future(
                bronze_pb2.IngestRequest(
                    job=common_pb2.JobRef(workflow_id=job.workflow_id, job_id=job.job_id)
                ),
                timeout=120,
            )
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            result = future.result()
            assert result.rows_out == 1_500_000
        assert process.wait(timeout=30) == 0
        lines = [json.loads(line) for line in process.stderr.read().splitlines() if "{" in line]
        (request_line,) = [line for line in lines if line.get("rpc") == "Ingest"]
        assert request_line["code"] == "OK"
        assert request_line["run_id"] == result.run_id != ""
        assert (request_line["workflow_id"], request_line["job_id"]) == (
            job.workflow_id,
            job.job_id,
        )
        assert request_line["rows_out"] == 1_500_000
        assert request_line["duration_ms"] > 500  # it outlived the SIGTERM sent at 0.5 s
    finally:
        process.kill()
