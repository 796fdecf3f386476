"""Bronze's Delta tables as other tools see them: read with no FlowForge code (polars over
deltalake, DuckDB's delta extension), time travel, a re-uploaded file replaced in one
commit (its change data feed), and racing ingests that never duplicate or lose a row."""

from __future__ import annotations

import threading
from typing import Any

import grpc
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from flowforge.errors import Conflict
from flowforge.layout import JobKey
from flowforge.reports import LayerReport
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2, common_pb2
from services.bronze.ingest import IngestPlan
from services.bronze.ingest import ingest as ingest_in_process
from services.bronze.options import CsvOptions
from tests.bronze.conftest import bronze_rows, committed_keys, ingest, rejected_rows, upload
from tests.bronze.oracle import read_expected
from tests.outside import duckdb_rows, duckdb_with_delta, outside_options

A = b"id,name\n1,ann\n2,bob,extra\n3,cy\n"  # row 2 has one field too many
B = b"id,name,note\n4,dee,new column\n5,eve,\n"


def expected_rows(files: dict[str, bytes]) -> dict[tuple[str, int], list[str]]:
    """(landing key, row number) -> the file's fields, by the csv module."""
    found = {}
    for key, data in files.items():
        for number, fields in read_expected(data).rows.items():
            found[(key, number)] = fields
    return found


def rows_by_source(frame: pl.DataFrame, headers: dict[str, list[str]]) -> dict[Any, list[str]]:
    """(landing key, row number) -> the values of that file's own columns."""
    return {
        (row["_source_key"], row["_row_number"]): [row[c] for c in headers[row["_source_key"]]]
        for row in frame.iter_rows(named=True)
    }


def test_an_outside_reader_sees_exactly_the_landing_rows_and_each_version(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    a = upload(store, job, "a.csv", A)
    first = ingest(bronze, job, run_id="r1")
    b = upload(store, job, "b.csv", B)
    second = ingest(bronze, job, run_id="r2")
    assert [f.status for f in second.files] == ["SKIPPED", "INGESTED"]
    headers = {a: read_expected(A).header, b: read_expected(B).header}
    uri = f"s3://{settings.s3_bucket}/bronze/{job.workflow_id}/{job.job_id}"
    con = duckdb_with_delta(settings)

    both = expected_rows({a: A, b: B})
    by_polars = pl.read_delta(uri, storage_options=outside_options(settings))
    assert rows_by_source(by_polars, headers) == both
    assert rows_by_source(duckdb_rows(con, uri), headers) == both
    assert by_polars.height == second.total_rows == len(both)
    assert by_polars.filter(pl.col("_source_key") == a)["note"].is_null().all()

    only_a = expected_rows({a: A})  # time travel: the first run's version
    old = pl.read_delta(uri, version=first.table_version, storage_options=outside_options(settings))
    assert rows_by_source(old, headers) == only_a
    assert rows_by_source(duckdb_rows(con, uri, first.table_version), headers) == only_a

    rejects_uri = f"s3://{settings.s3_bucket}/bronze/{job.workflow_id}/_rejects/{job.job_id}"
    rejects = duckdb_rows(con, rejects_uri)
    assert rejects.select("source_key", "row_number").rows() == [
        (a, n) for n in read_expected(A).wrong_field_count
    ]


def test_a_reuploaded_file_replaces_its_rows_in_one_commit(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    key = upload(store, job, "a.csv", A)
    upload(store, job, "b.csv", B)
    first = ingest(bronze, job, run_id="r1")
    old_etag = store.head(key).etag  # type: ignore[union-attr]
    replacement = b"id,name\n7,gus\n8,hal\n9,ida\n"
    upload(store, job, "a.csv", replacement)
    second = ingest(bronze, job, run_id="r2")
    assert [f.status for f in second.files] == ["INGESTED", "SKIPPED"]
    assert second.total_rows == len(read_expected(replacement).rows) + len(read_expected(B).rows)

    table = DeltaTable(
        f"s3://{settings.s3_bucket}/bronze/{job.workflow_id}/{job.job_id}",
        storage_options=outside_options(settings),
    )
    version = second.table_version
    assert version == first.table_version + 1  # one commit did both
    changes = pl.from_arrow(
        pa.table(table.load_cdf(starting_version=version, ending_version=version))
    )
    assert isinstance(changes, pl.DataFrame)
    deleted = changes.filter(pl.col("_change_type") == "delete")
    inserted = changes.filter(pl.col("_change_type") == "insert")
    assert sorted(deleted["id"]) == [r[0] for r in read_expected(A).rows.values()]
    assert set(deleted["_source_etag"]) == {old_etag}
    assert sorted(inserted["id"]) == [r[0] for r in read_expected(replacement).rows.values()]
    assert set(changes["_source_key"]) == {key}  # b.csv untouched

    rows = bronze_rows(settings, job).filter(pl.col("_source_key") == key)
    assert sorted(rows["id"]) == ["7", "8", "9"]
    assert rejected_rows(settings, job).filter(pl.col("source_key") == key).height == 0


class Gate(Deadline):
    """Holds each attempt just before it commits until every attempt is there, so that
    they all commit on top of the same versions (a race, every time)."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__()
        self._barrier = barrier

    def check(self, doing: str = "") -> None:
        if doing == "committing":
            self._barrier.wait(timeout=120)


def race(
    store: ObjectStore, settings: Settings, job: JobKey, run_ids: list[str]
) -> list[LayerReport | BaseException]:
    barrier = threading.Barrier(len(run_ids))
    outcomes: list[LayerReport | BaseException] = [RuntimeError("did not finish")] * len(run_ids)

    def attempt(index: int) -> None:
        plan = IngestPlan(job, run_ids[index], CsvOptions.validated())
        try:
            outcomes[index] = ingest_in_process(store, settings, plan, Gate(barrier))
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(run_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return outcomes


def assert_each_row_once(
    settings: Settings, store: ObjectStore, job: JobKey, files: dict[str, bytes]
) -> None:
    headers = {key: read_expected(data).header for key, data in files.items()}
    assert rows_by_source(bronze_rows(settings, job), headers) == expected_rows(files)
    wrong = sorted((k, n) for k, d in files.items() for n in read_expected(d).wrong_field_count)
    assert sorted(rejected_rows(settings, job).select("source_key", "row_number").rows()) == wrong
    # The losing attempt deleted exactly its own files: every data file left is committed.
    folder = f"bronze/{job.workflow_id}/{job.job_id}/"
    written = {o.key for o in store.list(folder) if "/_delta_log/" not in o.key}
    assert written == committed_keys(settings, job)


def landed_before_the_race(
    store: ObjectStore, settings: Settings, job: JobKey, existing: bool
) -> dict[str, bytes]:
    """The landing files; with `existing`, a.csv is committed first (the race then appends
    to tables that exist, else it creates them)."""
    files = {upload(store, job, "a.csv", A): A}
    if existing:
        plan = IngestPlan(job, "r0", CsvOptions.validated())
        ingest_in_process(store, settings, plan, Deadline())
    return files | {upload(store, job, "b.csv", B): B}


@pytest.mark.parametrize("existing", [False, True], ids=["creating", "appending"])
def test_two_attempts_of_one_run_id_commit_once_and_the_loser_replays(
    settings: Settings, store: ObjectStore, job: JobKey, existing: bool
) -> None:
    files = landed_before_the_race(store, settings, job, existing)
    outcomes = race(store, settings, job, ["same", "same"])
    reports = [o for o in outcomes if isinstance(o, LayerReport)]
    assert len(reports) == 2, outcomes
    assert sorted(r.reused for r in reports) == [False, True]
    assert len({(r.table_version, r.side_version, r.total_rows) for r in reports}) == 1
    table = DeltaTable(
        f"s3://{settings.s3_bucket}/bronze/{job.workflow_id}/{job.job_id}",
        storage_options=outside_options(settings),
    )
    writes = [c for c in table.history() if c["operation"] != "ADD COLUMN"]  # b.csv's `note`
    assert [c.get("flowforge.run_id") for c in writes] == ["same", "r0"][: 1 + existing]
    assert_each_row_once(settings, store, job, files)


@pytest.mark.parametrize("existing", [False, True], ids=["creating", "appending"])
def test_two_runs_racing_one_is_aborted_and_no_row_is_duplicated(
    settings: Settings, store: ObjectStore, job: JobKey, existing: bool
) -> None:
    files = landed_before_the_race(store, settings, job, existing)
    outcomes = race(store, settings, job, ["r1", "r2"])
    won = [o for o in outcomes if isinstance(o, LayerReport)]
    lost = [o for o in outcomes if not isinstance(o, LayerReport)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], Conflict) and "first" in lost[0].message
    assert_each_row_once(settings, store, job, files)
    # The next run finds everything committed.
    after = ingest_in_process(
        store, settings, IngestPlan(job, "r3", CsvOptions.validated()), Deadline()
    )
    assert {f.status for f in after.files} == {"SKIPPED"}
    assert after.total_rows == won[0].total_rows


def test_racing_requests_over_grpc_keep_each_row_once(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    big = b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(50_000))
    files = {upload(store, job, "big.csv", big): big, upload(store, job, "a.csv", A): A}
    futures = [
        bronze.Ingest.future(request, timeout=120)
        for request in (request_for(job, "g1"), request_for(job, "g2"))
    ]
    codes = []
    for future in futures:
        try:
            future.result()
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            codes.append(exc.code())
    assert grpc.StatusCode.OK in codes and set(codes) <= {
        grpc.StatusCode.OK,
        grpc.StatusCode.ABORTED,
    }
    assert_each_row_once(settings, store, job, files)


def request_for(job: JobKey, run_id: str) -> bronze_pb2.IngestRequest:
    return bronze_pb2.IngestRequest(
        job=common_pb2.JobRef(workflow_id=job.workflow_id, job_id=job.job_id), run_id=run_id
    )


def test_a_table_written_by_another_tool_is_read_by_its_rows(
    bronze, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    """Files holding several landing files (no per-file stats to go by) are read to find
    what they hold; such a file cannot be replaced alone, so a re-upload names it."""
    a, b = upload(store, job, "a.csv", A), upload(store, job, "b.csv", B)
    etags = {key: store.head(key).etag for key in (a, b)}  # type: ignore[union-attr]
    first = ingest(bronze, job, run_id="r1")
    mixed = bronze_rows(settings, job)  # both files' rows, rewritten as one file
    uri = f"s3://{settings.s3_bucket}/bronze/{job.workflow_id}/{job.job_id}"
    write_deltalake(
        uri, mixed.to_arrow(), mode="overwrite", storage_options=outside_options(settings)
    )
    again = ingest(bronze, job, run_id="r2")
    assert [f.status for f in again.files] == ["SKIPPED", "SKIPPED"]
    assert again.total_rows == first.total_rows == mixed.height
    assert {f.key: f.etag for f in again.files} == etags

    upload(store, job, "a.csv", b"id,name\n9,zed\n")
    with pytest.raises(grpc.RpcError) as caught:
        ingest(bronze, job, run_id="r3")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert a in caught.value.details() and "full_refresh" in caught.value.details()
    refreshed = ingest(bronze, job, run_id="r4", full_refresh=True)
    assert refreshed.total_rows == 1 + len(read_expected(B).rows)
