"""The silver service over a real channel on real S3: commits, failures, drift, hostile data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import polars as pl
import pytest

from flowforge import tables
from flowforge.errors import DeadlineExceeded
from flowforge.layout import JobKey
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from services.silver.refine import refine as refine_directly
from services.silver.refresh import spec_hash
from services.silver.servicer import plan_from_proto
from tests.silver.conftest import (
    fill_bronze,
    read_quarantine,
    read_silver,
    refine,
    serving,
    silver_objects,
)

PEOPLE = (
    b"id,name,joined,score\n"
    b"1,Ann,2024-01-05,10.5\n"
    b"2,Bob,2024-02-06,x\n"
    b"3,Cy,2024-03-07,7\n"
    b"3,Cy,2024-03-07,8\n"
)
TYPED = {
    "columns": [
        {"source": "id", "type": "integer"},
        {"source": "name"},
        {"source": "joined", "type": "date"},
        {"source": "score", "type": "float"},
    ],
    "dedupe": {"keys": ["id"]},
}


def committed(settings: Settings, job: JobKey) -> tables.Commit | None:
    """Silver's last commit, or None when silver has no table."""
    table = tables.load(settings, tables.TableRef.silver(job))
    return tables.history(table, 1)[0] if table is not None else None


def test_refine_commits_a_typed_delta_table_with_audit_columns(
    silver, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    bronze = fill_bronze(store, settings, job, PEOPLE)
    result = refine(silver, job, TYPED, run_id="s1")
    table = f"silver/{job.workflow_id}/{job.job_id}"
    assert (result.table, result.table_version) == (table, 0)
    assert result.manifest_key == table + "/_delta_log/00000000000000000000.json"
    assert store.head(result.manifest_key) is not None
    assert (result.refresh, result.refresh_reason) == ("full", "silver has no table yet")
    assert (result.input_version, result.input_run_id) == (bronze.version, "b1")
    assert (result.rows_in, result.rows_out, result.rows_rejected, result.duplicates_removed) == (
        4,
        2,
        1,
        1,
    )
    assert result.total_rows == 2
    frame = read_silver(settings, job).sort("id")
    assert frame.schema["id"] == pl.Int64 and frame.schema["joined"] == pl.Date
    assert frame.schema["_row_hash"] == pl.Int64  # bronze's hash, as its table holds it
    assert frame.rows()[1][:4] == (3, "Cy", frame["joined"][1], 8.0)  # the later line wins
    assert frame["_row_number"].to_list() == [1, 4]
    commit = committed(settings, job)
    assert commit is not None and commit.run_id == "s1" and commit.report is not None
    assert commit.inputs["bronze"] == {
        "version": bronze.version,
        "run_id": "b1",
        "columns": ["id", "name", "joined", "score"],
    }
    assert commit.inputs["spec"] == spec_hash(TYPED)
    assert [c.name for c in commit.report.columns][:4] == ["id", "name", "joined", "score"]
    assert {q.rule_id: q.failed for q in commit.report.quality} == {
        "cast_id": 0,
        "cast_joined": 0,
        "cast_score": 1,
    }
    quarantine = read_quarantine(settings, job)
    assert quarantine.select("_rule_id", "score", "_row_number").rows() == [("cast_score", "x", 2)]
    assert result.side_table == f"silver/{job.workflow_id}/_quarantine/{job.job_id}"
    assert result.side_version == 0


def test_missing_bronze_is_failed_precondition(silver, channel, job: JobKey) -> None:
    with pytest.raises(grpc.RpcError) as info:
        refine(silver, job, TYPED)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "bronze has not been committed" in info.value.details()
    assert "(no Delta table at s3://" in info.value.details()
    assert f"/bronze/{job.workflow_id}/{job.job_id})" in info.value.details()
    assert serving(channel)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"columns": [{"source": "id", "type": "uuid"}]}, "spec.columns[0].type 'uuid'"),
        ({"columns": [{"source": "ID"}]}, "spec.columns[0].source 'ID' is not a bronze column"),
        (
            {"expectations": [{"type": "regex", "column": "name", "pattern": "[a-"}]},
            "spec.expectations[0].pattern",
        ),
        ({"dedupe": {"keys": ["nope"]}}, "spec.dedupe.keys[0] 'nope' is not a silver column"),
        # Types inferred: whether a rule fits its column's type is known only after the
        # inference pass has read bronze; it is still INVALID_ARGUMENT and nothing is kept.
        (
            {"expectations": [{"type": "range", "column": "name", "min": 1}]},
            "spec.expectations[0]: range does not apply to 'name' of type string",
        ),
    ],
)
def test_bad_spec_is_invalid_argument(
    silver, channel, store: ObjectStore, settings: Settings, job: JobKey, spec, message
) -> None:
    fill_bronze(store, settings, job, PEOPLE)
    with pytest.raises(grpc.RpcError) as info:
        refine(silver, job, spec)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()
    assert silver_objects(store, job) == []
    assert serving(channel)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (  # no columns: rules name default targets, from the columns bronze's table has
            {"expectations": [{"type": "not_null", "column": "nope"}]},
            "spec.expectations[0].column 'nope' is not a silver column "
            "(silver has: 'id', 'name', 'joined', 'score')",
        ),
        (
            {"expectations": [{"type": "unique", "column": "Name"}]},
            "spec.expectations[0].column 'Name' is not a silver column",
        ),
        (  # valid for Python's re, not for polars, which runs it
            {"expectations": [{"type": "regex", "column": "name", "pattern": "(?=A)"}]},
            "spec.expectations[0].pattern '(?=A)' is not a valid regular expression",
        ),
    ],
)
def test_spec_errors_are_found_before_bronze_is_read(
    silver, channel, store: ObjectStore, settings: Settings, job: JobKey, spec, message
) -> None:
    """The bronze data files are gone: reading them would fail with another error."""
    fill_bronze(store, settings, job, PEOPLE)
    bronze = tables.TableRef.bronze(job)
    store.delete_keys([o.key for o in store.list(bronze.prefix) if "/_delta_log/" not in o.key])
    with pytest.raises(grpc.RpcError) as info:
        refine(silver, job, spec)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()
    assert silver_objects(store, job) == []
    assert serving(channel)


# Emails: a@x twice among the rows kept after dedupe (id 6 twice: one removed), nulls never
# duplicates, id "x" quarantined by its cast before the unique rule sees it.
EMAILS = b"id,email\n1,a@x\n2,b@x\n3,a@x\n4,\n5,\n6,c@x\n6,c@x\nx,a@x\n"


def unique_email(action: str, **rule: object) -> dict:
    return {
        "columns": [{"source": "id", "type": "integer"}, {"source": "email"}],
        "expectations": [{"type": "unique", "column": "email", "action": action, **rule}],
        "dedupe": {"keys": ["id"]},
    }


def quality_of(result, rule_id: str) -> tuple:
    (q,) = [q for q in result.quality if q.rule_id == rule_id]
    return (q.rule, q.column, q.action, q.checked, q.passed, q.failed)


def test_unique_warn_keeps_the_rows_and_counts_them(
    silver, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    fill_bronze(store, settings, job, EMAILS)
    result = refine(silver, job, unique_email("warn"))
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (8, 6, 1)
    assert result.duplicates_removed == 1 and dict(result.rejected_by_reason) == {"cast_id": 1}
    # Checked: the 6 rows left after casts and dedupe; failed: both rows holding a@x.
    assert quality_of(result, "unique_email") == ("unique", "email", "warn", 6, 4, 2)
    assert (
        "rule 'unique_email' (unique on column 'email', action warn) failed for 2 of 6 rows "
        "(33.33%); the rows were kept"
    ) in result.warnings
    kept = read_silver(settings, job).sort("id")
    assert kept["email"].to_list() == ["a@x", "b@x", "a@x", None, None, "c@x"]
    quarantine = read_quarantine(settings, job)
    assert quarantine["_rule_id"].to_list() == ["cast_id"]


def test_unique_fail_fails_the_layer_unless_within_max_bad_percent(
    silver, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    fill_bronze(store, settings, job, EMAILS)
    for spec, limit in ((unique_email("fail"), ""), (unique_email("fail", max_bad_percent=30), 30)):
        with pytest.raises(grpc.RpcError) as info:
            refine(silver, job, spec, run_id=f"bad-{limit}")
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert (
            "rule 'unique_email' (unique on column 'email', action fail) failed for 2 of 6 "
            "rows (33.33%)"
        ) in info.value.details()
        assert ("above max_bad_percent 30" in info.value.details()) == bool(limit)
        assert committed(settings, job) is None and silver_objects(store, job) == []
    result = refine(silver, job, unique_email("fail", max_bad_percent=40), run_id="within")
    assert result.rows_out == 6
    assert quality_of(result, "unique_email") == ("unique", "email", "fail", 6, 4, 2)
    assert "(33.33%); the rows were kept" in result.warnings[0]
    assert committed(settings, job).run_id == "within"  # type: ignore[union-attr]


def test_fail_rule_fails_the_layer_and_commits_nothing(
    silver, channel, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    fill_bronze(store, settings, job, PEOPLE)
    refine(silver, job, TYPED, run_id="good")
    before = silver_objects(store, job)
    spec = {
        **TYPED,
        "expectations": [{"type": "range", "column": "id", "max": 2, "action": "fail"}],
    }
    with pytest.raises(grpc.RpcError) as info:
        refine(silver, job, spec, run_id="bad")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "rule 'range_id' (range on column 'id', action fail) failed for 2 of 3 rows" in (
        info.value.details()
    )
    commit = committed(settings, job)
    assert commit is not None and commit.run_id == "good"
    assert silver_objects(store, job) == before  # the run's staged files are gone
    assert read_silver(settings, job).height == 2
    assert serving(channel)


def test_max_bad_percent_tolerates_up_to_the_threshold(
    silver, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    fill_bronze(store, settings, job, PEOPLE)

    def with_limit(limit: float) -> dict:
        rule = {"type": "range", "column": "id", "max": 2, "action": "fail"}
        return {**TYPED, "expectations": [{**rule, "max_bad_percent": limit}]}

    kept = refine(silver, job, with_limit(70))  # ids 3 and 3: 2 of the 3 rows cast, 66.67%
    assert kept.rows_out == 2 and kept.quality[-1].failed == 2
    assert "66.67%" in kept.warnings[0] and "the rows were kept" in kept.warnings[0]
    with pytest.raises(grpc.RpcError) as info:
        refine(silver, job, with_limit(50))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "above max_bad_percent 50" in info.value.details()


def test_schema_drift_is_reported_and_can_fail_the_layer(
    silver, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    fill_bronze(store, settings, job, PEOPLE)
    assert not refine(silver, job, TYPED, run_id="one").HasField("drift")
    changed = {
        "columns": [
            {"source": "id", "type": "string"},
            {"source": "name"},
            {"source": "score", "type": "float", "target": "points"},
        ]
    }
    second = refine(silver, job, changed, run_id="two")
    assert [(c.name, c.old_type, c.new_type) for c in second.drift.retyped] == [
        ("id", "Int64", "String")
    ]
    assert [c.name for c in second.drift.added] == ["points"]
    assert [c.name for c in second.drift.removed] == ["joined", "score"]
    with pytest.raises(grpc.RpcError) as info:
        refine(silver, job, {**TYPED, "fail_on_schema_drift": True}, run_id="three")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "id (String -> Int64)" in info.value.details()
    assert committed(settings, job).run_id == "two"  # type: ignore[union-attr]


def test_repeating_a_run_id_returns_the_committed_result(
    silver, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    fill_bronze(store, settings, job, PEOPLE)
    first = refine(silver, job, TYPED, run_id="same")
    again = refine(silver, job, {}, run_id="same")
    assert again.reused and not first.reused
    assert (again.table_version, again.side_version) == (first.table_version, first.side_version)
    assert [o.key for o in again.data_objects] == [o.key for o in first.data_objects]
    assert again.rows_out == first.rows_out
    assert committed(settings, job).version == first.table_version  # type: ignore[union-attr]


def test_without_a_spec_names_are_normalised_types_inferred_duplicates_dropped(
    silver, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    fill_bronze(
        store,
        settings,
        job,
        b"Customer ID,Signup Date,Amount,Active,Notes,Code\n"
        b"1, 2024-01-05 ,10.5,true,,007\n"
        b"2,2024-02-06,N/A,false,NULL,010\n"
        b"2,2024-02-06,N/A,false,NULL,010\n"
        b" 2 ,2024-02-06,,FALSE,,010\n",
    )
    result = refine(silver, job)
    types = {c.name: c.type for c in result.schema}
    assert types["customer_id"] == "Int64" and types["signup_date"] == "Date"
    assert types["amount"] == "Float64" and types["active"] == "Boolean"
    # Codes keep their text: '007' as an integer would be 7.
    assert types["notes"] == "String" and types["code"] == "String"
    # Exact duplicates after cleaning: lines 2, 3 and 4 are one record.
    assert (result.rows_out, result.duplicates_removed, result.rows_rejected) == (2, 2, 0)
    assert [(d.key_count, d.keys) for d in result.duplicates] == [(3, 1)]
    assert result.warnings == [
        "column 'notes' is null in every row; typed as string",
        "column 'code' kept as text: '007' would lose its leading zero as integer",
    ]
    assert read_silver(settings, job).sort("customer_id")["code"].to_list() == [
        "007",
        "010",
    ]


def test_hostile_data_is_counted_and_quarantined_never_crashes(
    silver, channel, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    long_text = "ж" * 100_000
    fill_bronze(
        store,
        settings,
        job,
        (
            "id,text,number,when,empty,count\n"
            f"1,{long_text},+1.5e3,2024-01-05,,one\n"
            "2,مرحبا 👋🏽,-0.25E-2,05/01/2024,,two\n"
            '3,"a ""quoted"" \x7f value",1e999,2024-13-01,,three\n'
            "4,'; DROP TABLE x; --,NaN,,,four\n"
        ).encode(),
    )
    spec = {
        "columns": [
            {"source": "id", "type": "integer"},
            {"source": "text"},
            {"source": "number", "type": "float"},
            {"source": "when", "type": "date", "formats": ["%Y-%m-%d", "%d/%m/%Y"]},
            {"source": "empty", "type": "timestamp"},
            {"source": "count", "type": "integer"},
        ],
        "expectations": [{"type": "length", "column": "text", "max_length": 50}],
        "max_bad_percent": 100,  # keep the quarantine to look at it
    }
    result = refine(silver, job, spec)
    # Every value of `count` fails its cast: every row goes to quarantine, none is lost.
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (4, 0, 4)
    assert dict(result.rejected_by_reason) == {"cast_number": 2, "cast_count": 2}
    quality = {q.rule_id: (q.checked, q.failed) for q in result.quality}
    assert quality["cast_count"] == (4, 4) and quality["cast_empty"] == (4, 0)
    assert quality["cast_when"] == (4, 1)  # 2024-13-01; the empty `when` is null, not a failure
    assert quality["length_text"] == (0, 0)  # no row passed its casts
    quarantine = read_quarantine(settings, job).sort("_row_number")
    assert quarantine["text"][0] == long_text  # the original, whole
    assert quarantine["_reason"][3] == "'NaN' is not a valid float"
    assert quarantine["_reason"][2].startswith("'1e999' is not a valid float")
    silver_rows = read_silver(settings, job)
    assert silver_rows.height == 0 and silver_rows.schema["count"] == pl.Int64
    assert serving(channel)


def test_empty_bronze_commits_an_empty_typed_silver(
    silver, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    fill_bronze(store, settings, job, b"id,name,joined,score\n")
    result = refine(silver, job, TYPED)
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (0, 0, 0)
    assert not result.reject_objects and not result.HasField("side_version")  # none to add
    frame = read_silver(settings, job)
    assert frame.height == 0 and frame.schema["joined"] == pl.Date
    assert read_quarantine(settings, job).height == 0


@pytest.mark.parametrize("memory_mb", [2048, 1])
def test_dedupe_and_unique_rules_agree_in_memory_and_in_buckets(
    store: ObjectStore, settings: Settings, job: JobKey, memory_mb: int
) -> None:
    """1 MB forces the bucketed path (the bronze objects need more than that in memory)."""
    lines = [b"id,email,at"] + [
        b"%d,user%d@example.com,2024-01-%02d" % (i % 300, i % 300 % 290, 1 + i // 1200)
        for i in range(30_000)
    ]
    fill_bronze(store, settings, job, b"\n".join(lines) + b"\n")
    spec = {
        "columns": [
            {"source": "id", "type": "integer"},
            {"source": "email"},
            {"source": "at", "type": "date"},
        ],
        "expectations": [{"type": "unique", "column": "email", "action": "drop"}],
        "dedupe": {"keys": ["id"], "sequence_by": "at"},
    }
    request_settings = settings.model_copy(update={"silver_memory_limit_mb": memory_mb})
    request = _request(job, spec)
    result = refine_directly(store, request_settings, plan_from_proto(request), Deadline())
    assert (len(result.data_objects) > 1) == (memory_mb == 1)  # one part per bucket
    # 300 ids, 100 rows each; after dedupe ids 290-299 share their emails with ids 0-9.
    assert (result.rows_in, result.duplicates_removed) == (30_000, 29_700)
    assert (result.rows_out, result.rows_rejected) == (280, 20)
    assert dict(result.rejected_by_reason) == {"unique_email": 20}
    # Checked: the 300 rows left after dedupe; failed: the 20 holding one of 10 emails twice.
    (unique,) = [q for q in result.quality if q.rule_id == "unique_email"]
    assert (unique.action, unique.checked, unique.passed, unique.failed) == ("drop", 300, 280, 20)
    kept = read_silver(settings, job)
    assert kept.height == 280 and kept["id"].is_unique().all()
    assert set(kept["id"]) == set(range(10, 290))
    assert {d.day for d in kept["at"]} == {25}  # every id's latest date
    quarantine = read_quarantine(settings, job)
    assert set(quarantine["_reason"]) == {f"'user{i}@example.com' is not unique" for i in range(10)}


def _request(job: JobKey, spec: dict):
    from google.protobuf import json_format

    from flowforge.v1 import common_pb2, silver_pb2

    return silver_pb2.RefineRequest(
        job=common_pb2.JobRef(workflow_id=job.workflow_id, job_id=job.job_id),
        spec=json_format.ParseDict(spec, silver_pb2.SilverSpec()),
    )


class GivesUpBeforeCommit(Deadline):
    """A caller that gives up just as the work is done. A real client deadline cannot be
    made to expire at exactly this step, so this one is simulated."""

    def check(self, doing: str = "") -> None:
        if doing == "committing":
            raise DeadlineExceeded("deadline exceeded while committing")


def test_no_late_commit_for_a_caller_that_gave_up(
    store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    fill_bronze(store, settings, job, PEOPLE)
    with pytest.raises(DeadlineExceeded):
        refine_directly(
            store, settings, plan_from_proto(_request(job, TYPED)), GivesUpBeforeCommit()
        )
    assert committed(settings, job) is None
    assert silver_objects(store, job) == []


def test_serve_silver_from_the_cli(settings: Settings, tmp_path: Path) -> None:
    """`flowforge serve silver` answers health checks and stops cleanly on SIGTERM."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from flowforge.embedded import pick_ports

    port = pick_ports()["s3.port"]
    env = {
        **os.environ,
        "FLOWFORGE_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "FLOWFORGE_S3_ACCESS_KEY_ID": settings.s3_access_key_id or "",
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key.get_secret_value(),  # type: ignore[union-attr]
        "FLOWFORGE_S3_BUCKET": settings.s3_bucket,
    }
    command = [sys.executable, "-m", "cli", "serve", "silver", "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            check = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="flowforge.v1.SilverService"), timeout=5
            )
            assert check.status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
