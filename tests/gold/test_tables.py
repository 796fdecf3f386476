"""Gold's model tables as Delta readers see them: statistics, stored types, schema changes,
and commits racing on the real store (the race made deterministic by committing the other
attempt from inside this one's commit step, after it has read the table)."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import grpc
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from flowforge import tables
from flowforge.errors import Conflict
from flowforge.layout import JobKey
from flowforge.reports import LayerReport, ModelOutput
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from services.gold.commit import Part, Staged, commit_build, committed_report, new_part
from tests.gold.conftest import build, commit_silver, read_model

TYPED = """
SELECT i AS n,
       CASE WHEN i % 4 = 0 THEN NULL ELSE 'v' || lpad(i::VARCHAR, 3, '0') END AS short_text,
       repeat('long', 10) || i AS long_text,
       DATE '2024-02-01' + i::INTEGER AS day,
       (i / 7)::DECIMAL(12, 2) AS amount,
       TIMESTAMPTZ '2024-01-01 00:00:00.123456+00' + to_seconds(i) AS at_utc,
       TIMESTAMP '2024-01-01 10:00:00.5' + to_minutes(i) AS at_local,
       i / 3 AS ratio,
       i % 2 = 0 AS even,
       count(*) OVER () -- no alias: DuckDB names it "count() OVER ()"
FROM silver, range(50) AS r(i)
"""


def log_stats(table: DeltaTable) -> dict[str, dict[str, object]]:
    """min, max and null count per column of the table's one file, from its log."""
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    (action,) = actions
    found: dict[str, dict[str, object]] = {}
    for key, value in action.items():
        kind, _, column = key.partition(".")
        if kind in ("min", "max", "null_count") and column:
            found.setdefault(column, {})[kind] = value
    return found | {"": {"rows": action["num_records"]}}


def test_model_statistics_match_what_delta_rs_writes_for_the_same_rows(
    gold, settings: Settings, job: JobKey
) -> None:
    commit_silver(settings, job, pl.DataFrame({"x": [1]}))
    result = build(gold, job, {"typed": TYPED}, skip_profile=True)
    (model,) = result.models
    ours = DeltaTable(TableRef(model.table).uri(settings), version=model.version,
                      storage_options=tables.storage_options(settings))  # fmt: skip
    # The oracle: delta-rs's own writer, given the same rows, in a table of its own.
    rows = read_model(settings, result, "typed")
    oracle_ref = TableRef(f"oracle/{uuid.uuid4().hex}")
    write_deltalake(oracle_ref.uri(settings), rows.to_arrow(),
                    storage_options=tables.storage_options(settings))  # fmt: skip
    oracle = DeltaTable(oracle_ref.uri(settings), storage_options=tables.storage_options(settings))
    got, expected = log_stats(ours), log_stats(oracle)
    assert got[""] == expected[""] == {"rows": 50}
    unnamed = "count() OVER ()"
    for column in ("n", "short_text", "day", "amount", "at_utc", "at_local", "even", unnamed):
        assert got[column] == expected[column], column
    for column in ("long_text", "ratio"):  # counts only: text past 32 characters, floats
        assert got[column]["null_count"] == expected[column]["null_count"] == 0
        assert got[column].get("min") is None and got[column].get("max") is None
    assert got["short_text"]["null_count"] == 13  # i = 0, 4, ..., 48


def test_types_a_delta_table_cannot_hold_are_stored_exactly_or_as_text(
    gold, settings: Settings, job: JobKey
) -> None:
    commit_silver(settings, job, pl.DataFrame({"x": [1]}))
    sql = """
        SELECT 200::UTINYINT AS tiny, 18446744073709551615::UBIGINT AS huge,
               TIMESTAMP_S '2024-05-06 07:08:09' AS seconds,
               TIMESTAMP_NS '2024-05-06 07:08:09.123456789' AS nanos,
               TIME '01:02:03' AS clock, INTERVAL 3 DAY AS span,
               '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::UUID AS id
        FROM silver"""
    result = build(gold, job, {"odd": sql}, skip_profile=True)
    got = read_model(settings, result, "odd").to_dicts()
    assert got == [
        {
            "tiny": 200,
            "huge": Decimal(2**64 - 1),
            "seconds": datetime(2024, 5, 6, 7, 8, 9),
            "nanos": datetime(2024, 5, 6, 7, 8, 9, 123456),
            "clock": "01:02:03",
            "span": "3 days",
            "id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        }
    ]
    (model,) = result.models
    types = {c.name: c.type for c in model.schema}
    assert (types["tiny"], types["huge"], types["nanos"]) == (
        "SMALLINT",
        "DECIMAL(20,0)",
        "TIMESTAMP",
    )
    warned = [w for w in result.warnings if w.startswith("model 'odd': column")]
    assert [w.split("'")[3] for w in warned] == ["nanos", "clock", "span", "id"]
    assert "nanoseconds are cut to microseconds" in warned[0]

    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"nested": "SELECT [1::UBIGINT] AS ids FROM silver"}, skip_profile=True)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(
        "model 'nested': column 'ids' is UBIGINT[], which holds UBIGINT"
    )


def test_a_model_whose_columns_change_replaces_its_tables_schema(
    gold, settings: Settings, job: JobKey
) -> None:
    commit_silver(settings, job, pl.DataFrame({"x": [1, 2]}))
    first = build(gold, job, {"m": "SELECT x AS a FROM silver ORDER BY x"}, skip_profile=True)
    # A TIMESTAMP without time zone needs a table feature the first version did not have.
    second = build(
        gold, job,
        {"m": "SELECT TIMESTAMP '2024-01-01 12:00' + to_hours(x) AS at, 'b' AS b FROM silver "
              "ORDER BY x"},
        skip_profile=True,
    )  # fmt: skip
    assert read_model(settings, first, "m").to_dicts() == [{"a": 1}, {"a": 2}]
    assert read_model(settings, second, "m").to_dicts() == [
        {"at": datetime(2024, 1, 1, 13), "b": "b"},
        {"at": datetime(2024, 1, 1, 14), "b": "b"},
    ]
    assert second.models[0].version > first.models[0].version
    # Time travel still reads the first version with its own columns.
    assert read_model(settings, first, "m").columns == ["a"]


# -- commits racing on the real store ------------------------------------------------


def parquet_part(store: ObjectStore, ref: TableRef, frame: pl.DataFrame) -> Part:
    part = new_part("m", ref, {"sql": "test"})
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    store.put_bytes(part.key, buffer.getvalue())
    return part


def report_for(run_id: str, parts: list[Part]):
    def make(staged: list[Staged], versions: list[int]) -> LayerReport:
        return LayerReport(
            layer="gold",
            workflow_id="w",
            job_id="j",
            run_id=run_id,
            models=[
                ModelOutput(
                    name=s.name,
                    key=s.file.key,
                    rows=s.file.rows,
                    size_bytes=s.file.size,
                    table=s.ref.path,
                    version=v,
                )  # fmt: skip
                for s, v in zip(staged, versions, strict=True)
            ],
        )

    return make


def files_of(settings: Settings, ref: TableRef) -> list[str]:
    table = tables.require(settings, ref, "model")
    return [u.removeprefix(f"s3://{settings.s3_bucket}/") for u in table.file_uris()]


@pytest.mark.parametrize("same_run", [False, True])
def test_two_attempts_racing_for_a_model_table(
    settings: Settings, store: ObjectStore, same_run: bool
) -> None:
    ref = TableRef(f"gold/race-{uuid.uuid4().hex[:8]}/job/m")
    winner = parquet_part(store, ref, pl.DataFrame({"n": [1]}))
    loser = parquet_part(store, ref, pl.DataFrame({"n": [2]}))
    loser_run = "run-a" if same_run else "run-b"
    deadline = Deadline()

    def loser_report(staged: list[Staged], versions: list[int]) -> LayerReport:
        # The loser has read the table; the winner commits before it does.
        commit_build(settings, store, "run-a", [winner], report_for("run-a", [winner]), deadline, 5)
        return report_for(loser_run, [loser])(staged, versions)

    if same_run:
        replayed = commit_build(settings, store, loser_run, [loser], loser_report, deadline, 5)
        assert replayed.reused and replayed.run_id == "run-a"
        assert [m.key for m in replayed.models] == [winner.key]
        assert replayed.models[0].preview_json == '[{"n":1}]'
    else:
        with pytest.raises(Conflict):
            commit_build(settings, store, loser_run, [loser], loser_report, deadline, 5)
    assert files_of(settings, ref) == [winner.key]  # the winner's version, nothing lost
    assert store.head(loser.key) is None  # the loser removed exactly its own file
    table = tables.require(settings, ref, "model")
    assert tables.find_commit(table, "run-b") is None


def test_a_run_that_lost_its_second_table_is_built_again_whole(
    settings: Settings, store: ObjectStore
) -> None:
    base = f"gold/race-{uuid.uuid4().hex[:8]}/job"
    first, second = TableRef(f"{base}/m1"), TableRef(f"{base}/m2")
    parts = [parquet_part(store, first, pl.DataFrame({"n": [1]})),
             parquet_part(store, second, pl.DataFrame({"n": [1]}))]  # fmt: skip
    other = parquet_part(store, second, pl.DataFrame({"n": [9]}))
    deadline = Deadline()

    def interleaved(staged: list[Staged], versions: list[int]) -> LayerReport:
        # Another run commits the second table after this run read it.
        commit_build(settings, store, "other", [other], report_for("other", [other]), deadline, 5)
        return report_for("r", parts)(staged, versions)

    with pytest.raises(Conflict):
        commit_build(settings, store, "r", parts, interleaved, deadline, 5)
    assert files_of(settings, first) == [parts[0].key]  # committed before the race was lost
    assert files_of(settings, second) == [other.key]
    assert store.head(parts[1].key) is None
    # The run is not complete, so its id does not replay: a retry builds and commits again.
    assert committed_report(settings, [first, second], "r") is None
    retry = [parquet_part(store, first, pl.DataFrame({"n": [2]})),
             parquet_part(store, second, pl.DataFrame({"n": [2]}))]  # fmt: skip
    report = commit_build(settings, store, "r", retry, report_for("r", retry), deadline, 5)
    assert [files_of(settings, first), files_of(settings, second)] == [
        [retry[0].key],
        [retry[1].key],
    ]
    replayed = committed_report(settings, [first, second], "r")
    assert replayed is not None
    assert [(m.table, m.version) for m in replayed.models] == [
        (m.table, m.version) for m in report.models
    ]


def test_previews_of_a_replay_come_from_the_committed_version(
    gold, settings: Settings, job: JobKey
) -> None:
    at = datetime(2024, 1, 2, 3, tzinfo=UTC)
    commit_silver(settings, job, pl.DataFrame({"d": [date(2024, 1, 2)], "seen": [at]}))
    sql = {"m": "SELECT d, seen, TIME '01:02:03' AS t, 1.50::DECIMAL(4,2) AS price FROM silver"}
    first = build(gold, job, sql, run_id="twice", skip_profile=True)
    again = build(gold, job, sql, run_id="twice", skip_profile=True)
    assert again.reused
    assert again.models[0].preview_json == first.models[0].preview_json
