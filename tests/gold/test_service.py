"""GoldService over a real channel on the embedded S3: outputs, commits and errors."""

from __future__ import annotations

import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal

import grpc
import polars as pl
import pytest

from flowforge import tables
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from services.gold.guard import MAX_SQL_CHARS
from services.gold.profile import profile_sql
from tests.gold.conftest import (
    build,
    commit_dimension,
    commit_silver,
    preview,
    read_model,
    serving,
)


def sales(first_id: int, n: int) -> pl.DataFrame:
    ids = list(range(first_id, first_id + n))
    return pl.DataFrame(
        {
            "order_id": ids,
            "region_code": [["N", "S", "E", "W"][i % 4] for i in ids],
            "amount": [Decimal(i * 37 % 100) + Decimal("0.25") for i in ids],
            "day": [date(2024, 1 + i % 12, 1 + i % 28) for i in ids],
            "_row_hash": [i * 7919 for i in ids],
        },
        schema_overrides={"amount": pl.Decimal(12, 2)},
    )


def regions_dimension(settings: Settings) -> str:
    name = f"regions_{uuid.uuid4().hex[:8]}"
    # No W: an inner join drops those rows.
    regions = pl.DataFrame({"code": ["N", "S", "E"], "name": ["North", "South", "East"]})
    commit_dimension(settings, name, regions)
    return name


def model_files(store: ObjectStore, job: JobKey) -> set[str]:
    """Every data file under the job's model tables (their logs left out)."""
    return {
        o.key
        for o in store.list(f"gold/{job.workflow_id}/{job.job_id}/")
        if "/_delta_log/" not in o.key
    }


def test_models_read_silver_and_a_dimension_and_commit_together(
    gold, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    silver = pl.concat([sales(1, 20), sales(21, 17)])
    committed = commit_silver(settings, job, sales(1, 20), sales(21, 17), run_id="silver-7")
    dim = regions_dimension(settings)
    models = {
        "by_region": f"""
            SELECT r.name AS region, count(*) AS orders, sum(s.amount) AS amount
            FROM silver AS s JOIN dim_{dim} AS r ON r.code = s.region_code
            GROUP BY ALL ORDER BY region""",
        "big_orders": "SELECT order_id, amount, day FROM silver WHERE amount > 30 ORDER BY 1;",
    }
    result = build(gold, job, models, run_id="r1", dimensions=[dim], preview_rows=5)

    regions = pl.DataFrame({"region_code": ["N", "S", "E"], "region": ["North", "South", "East"]})
    expected_regions = (
        silver.join(regions, on="region_code")
        .group_by("region")
        .agg(pl.len().cast(pl.Int64).alias("orders"), pl.col("amount").sum())
        .sort("region")
    )
    assert read_model(settings, result, "by_region").to_dicts() == expected_regions.to_dicts()
    expected_big = silver.filter(pl.col("amount") > 30).select("order_id", "amount", "day")
    assert read_model(settings, result, "big_orders").to_dicts() == expected_big.to_dicts()

    assert [m.name for m in result.models] == ["by_region", "big_orders", "profile"]
    big = result.models[1]
    assert big.table == f"gold/{job.workflow_id}/{job.job_id}/big_orders"
    assert big.key.startswith(f"{big.table}/part-") and big.key.endswith(".parquet")
    assert big.rows == expected_big.height > 5
    assert [(c.name, c.type) for c in big.schema] == [
        ("order_id", "BIGINT"),
        ("amount", "DECIMAL(12,2)"),
        ("day", "DATE"),
    ]
    first = expected_big.head(5)
    assert preview(result, "big_orders") == [
        {"order_id": r["order_id"], "amount": float(r["amount"]), "day": r["day"].isoformat()}
        for r in first.to_dicts()
    ]
    assert (result.layer, result.run_id, result.input_run_id) == ("gold", "r1", "silver-7")
    assert (result.input_version, result.rows_in) == (committed.version, silver.height)
    assert result.rows_out == sum(m.rows for m in result.models)
    assert result.table == f"gold/{job.workflow_id}/{job.job_id}"
    assert not result.HasField("table_version")  # one version per model table, in models

    # Each model is a table of its own whose latest version is this run's commit, holding
    # exactly the file the result names and recording what it read.
    for model in result.models:
        table = tables.require(settings, TableRef(model.table), model.name)
        commit = tables.find_commit(table, "r1")
        assert commit is not None and commit.version == model.version == table.version()
        assert [u.removeprefix(f"s3://{settings.s3_bucket}/") for u in table.file_uris()] == [
            model.key
        ]
        assert commit.inputs["silver"] == {
            "table": f"silver/{job.workflow_id}/{job.job_id}",
            "version": committed.version,
            "run_id": "silver-7",
        }
        assert commit.inputs["dimensions"][dim]["version"] == 0
    first = result.models[0]
    assert result.manifest_key == f"{first.table}/_delta_log/{first.version:020d}.json"
    assert store.head(result.manifest_key) is not None
    lineage = [(i.table, i.version, i.run_id, i.job_id, i.dimension) for i in big.inputs]
    assert lineage == [
        (f"silver/{job.workflow_id}/{job.job_id}", committed.version, "silver-7", job.job_id, ""),
        (f"dimensions/{dim}", 0, "dimension-1", "", dim),
    ]


def test_profile_counts_nulls_ties_and_unicode(gold, settings: Settings, job: JobKey) -> None:
    frame = pl.DataFrame(
        {
            "name": ["Zoë", "Łukasz", "Zoë", "Łukasz", "ß", None, "😀", "Zoë"],
            "n": [3, 1, 3, 1, None, None, 2, 1],
            "price": [
                Decimal("1.50"),
                None,
                Decimal("1.50"),
                Decimal("10.00"),
                None,
                None,
                Decimal("2.00"),
                Decimal("10.00"),
            ],
            "day": [
                date(2024, 2, 1),
                date(2023, 12, 31),
                None,
                date(2024, 2, 1),
                None,
                date(2024, 2, 1),
                date(2023, 12, 31),
                None,
            ],
            "active": [True, False, None, True, True, False, None, None],
            "empty": pl.Series([None] * 8, dtype=pl.String),
            "_row_hash": list(range(8)),
        },
        schema_overrides={"price": pl.Decimal(12, 2)},
    )
    commit_silver(settings, job, frame.head(5), frame.tail(3))
    result = build(gold, job)
    profile = read_model(settings, result, "profile")

    duck_types = {
        "name": "VARCHAR",
        "n": "BIGINT",
        "price": "DECIMAL(12,2)",
        "day": "DATE",
        "active": "BOOLEAN",
        "empty": "VARCHAR",
    }

    def text(value: object) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        return value.isoformat() if isinstance(value, date) else str(value)

    expected = []
    for column, duck_type in duck_types.items():
        values = frame[column].drop_nulls()
        counts = (
            frame.select(column)
            .drop_nulls()
            .group_by(column)
            .len()
            .sort(["len", column], descending=[True, False])
            .head(5)
        )
        expected.append(
            {
                "column_name": column,
                "column_type": duck_type,
                "row_count": frame.height,
                "null_count": frame[column].null_count(),
                "distinct_count": values.n_unique(),
                "min_value": text(values.min()) if len(values) else None,
                "max_value": text(values.max()) if len(values) else None,
                "top_values": [{"value": text(v), "count": n} for v, n in counts.iter_rows()],
            }
        )
    assert profile.to_dicts() == expected
    # Ties in frequency are broken by the value: 1 before 3 (both twice), Zoë before Łukasz.
    assert expected[1]["top_values"][:2] == [{"value": "1", "count": 3}, {"value": "3", "count": 2}]
    assert [v["value"] for v in expected[0]["top_values"]][:2] == ["Zoë", "Łukasz"]


def test_profile_leaves_out_only_silvers_audit_columns(
    gold, settings: Settings, job: JobKey
) -> None:
    frame = pl.DataFrame(
        {
            "_id": [7, 7, 9],
            "name": ["a", "b", None],
            "_row_hash": [1, 2, 3],
            "_source_key": ["landing/a.csv"] * 3,
            "_source_etag": ["e"] * 3,
            "_row_number": [1, 2, 3],
            "_ingested_at": [datetime(2024, 1, 1, tzinfo=UTC)] * 3,
            "_bronze_run_id": ["b1"] * 3,
            "_silver_run_id": ["s1"] * 3,
        }
    )
    commit_silver(settings, job, frame)
    profile = read_model(settings, build(gold, job), "profile")
    assert profile["column_name"].to_list() == ["_id", "name"]
    (row,) = profile.filter(pl.col("column_name") == "_id").to_dicts()
    assert (row["column_type"], row["distinct_count"], row["min_value"], row["max_value"]) == (
        "BIGINT",
        2,
        "7",
        "9",
    )
    assert row["top_values"] == [{"value": "7", "count": 2}, {"value": "9", "count": 1}]


def test_a_failing_model_leaves_the_committed_output_untouched(
    gold, channel, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    commit_silver(settings, job, sales(1, 10))
    first = build(gold, job, {"totals": "SELECT count(*) AS orders FROM silver"}, run_id="good")
    before = model_files(store, job)
    assert before == {m.key for m in first.models}
    failing = {
        "totals": "SELECT count(*) AS orders FROM silver",
        "broken": "SELECT CAST(region_code AS INTEGER) AS code FROM silver",
    }
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, failing, run_id="bad")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "model 'broken'" in caught.value.details()
    assert "Could not convert string" in caught.value.details()

    for model in first.models:
        table = tables.require(settings, TableRef(model.table), model.name)
        assert table.version() == model.version  # no commit of the failed run
        assert tables.find_commit(table, "bad") is None
    assert tables.load(settings, TableRef.gold_model(job, "broken")) is None
    assert model_files(store, job) == before  # the failed run's part files are gone
    assert serving(channel)


def test_missing_silver_is_a_failed_precondition(gold, job: JobKey) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"m": "SELECT 1 AS one FROM silver"})
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"silver of job {job} has not been committed" in caught.value.details()


def test_a_missing_dimension_is_named(gold, settings: Settings, job: JobKey) -> None:
    commit_silver(settings, job, sales(1, 3))
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"m": "SELECT * FROM dim_nowhere"}, dimensions=["nowhere"])
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "dimension 'nowhere' has not been committed" in caught.value.details()


def test_repeating_a_run_id_returns_the_committed_result(
    gold, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    commit_silver(settings, job, sales(1, 4))
    first = build(gold, job, {"m": "SELECT count(*) AS n FROM silver"}, run_id="once")
    files = model_files(store, job)
    commit_silver(settings, job, sales(1, 9), run_id="silver-2")  # silver moved on since
    again = build(gold, job, {"m": "SELECT 2 AS n"}, run_id="once")
    assert again.reused and not first.reused
    assert [(m.key, m.rows, m.table, m.version, m.preview_json) for m in again.models] == [
        (m.key, m.rows, m.table, m.version, m.preview_json) for m in first.models
    ]
    assert json.loads(again.models[0].preview_json) == [{"n": 4}]
    assert model_files(store, job) == files  # nothing was written again


@pytest.mark.parametrize(
    ("models", "spec", "field"),
    [
        ({"bad name": "SELECT 1"}, {}, "spec.models[0].name"),
        ({"a": "SELECT 1", "A": "SELECT 2"}, {}, "spec.models[1].name"),
        ({"profile": "SELECT 1"}, {}, "spec.models[0].name 'profile'"),
        ({"a": "SELECT 1"}, {"preview_rows": 101}, "spec.preview_rows"),
        ({"a": "SELECT 1"}, {"dimensions": ["../x"]}, "spec.dimensions[0]"),
        ({}, {"skip_profile": True}, "nothing to build"),
        ({"a": "  ;  "}, {}, "model 'a': the SQL is empty"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(gold, job: JobKey, models, spec, field) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, models, **spec)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details()


def test_engine_errors_name_the_model_and_never_show_the_secret(
    gold, channel, settings: Settings, store: ObjectStore, job: JobKey, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="flowforge")
    committed = commit_silver(settings, job, sales(1, 5), sales(6, 5))
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"typo": "SELECT order_id,\n  regoin_code FROM silver"})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("model 'typo': Binder Error")
    assert "region_code" in caught.value.details()  # DuckDB's own suggestion
    assert "LINE 2:   regoin_code FROM silver" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"twice": "SELECT order_id AS n, amount AS N FROM silver"})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "model 'twice' returns more than one column named 'N'" in caught.value.details()

    store.delete_keys([committed.keys[1]])  # silver's log now names a missing file
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"all": "SELECT * FROM silver"})
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    secret = settings.s3_secret_access_key.get_secret_value()  # type: ignore[union-attr]
    assert caught.value.details().startswith("reading silver: the object store answered 404")
    assert committed.keys[1].rsplit("/", 1)[1] in caught.value.details()
    assert secret not in caught.value.details()
    logged = [str(r.__dict__) for r in caplog.records]
    assert any("FAILED_PRECONDITION" in line for line in logged)  # the request's log line
    assert not any(secret in line for line in logged)
    assert serving(channel)


def test_a_syntax_error_names_the_model_with_duckdbs_pointer(
    gold, channel, settings: Settings, store: ObjectStore, job: JobKey
) -> None:
    commit_silver(settings, job, sales(1, 3))
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"fine": "SELECT 1 AS one", "typo": "SELEC 1"})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details()
    assert details.startswith("model 'typo': Parser Error: syntax error at or near \"SELEC\""), (
        details
    )
    assert details.endswith("\n\nLINE 1: SELEC 1\n        ^")  # the caret under SELEC
    assert tables.load(settings, TableRef.gold_model(job, "fine")) is None
    assert model_files(store, job) == set()
    assert serving(channel)


def test_profile_only_build_on_an_empty_silver(gold, settings: Settings, job: JobKey) -> None:
    committed = commit_silver(settings, job, sales(1, 0))
    assert committed.keys == []  # a table with no rows has no data file to read
    result = build(gold, job)
    assert [m.name for m in result.models] == ["profile"]
    profile = read_model(settings, result, "profile")
    assert profile["row_count"].to_list() == [0, 0, 0, 0]
    assert json.loads(result.models[0].preview_json)[0]["column_name"] == "order_id"


def test_concurrent_builds_each_get_their_own_database(gold, settings: Settings) -> None:
    jobs = [JobKey(f"wf-{uuid.uuid4().hex[:10]}", "job") for _ in range(3)]
    for n, job in enumerate(jobs, start=1):
        commit_silver(settings, job, sales(1, 10 * n))
    sql = {"totals": "SELECT count(*) AS orders, sum(amount) AS amount FROM silver"}
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda j: build(gold, j, sql, skip_profile=True), jobs))
    for n, result in enumerate(results, start=1):
        expected = sales(1, 10 * n).select(pl.len().alias("orders"), pl.col("amount").sum())
        assert read_model(settings, result, "totals").to_dicts() == expected.to_dicts()


@pytest.mark.parametrize("comment_lines", [0, 6])
def test_a_runtime_error_quotes_the_models_own_line(
    gold, settings: Settings, job: JobKey, comment_lines: int
) -> None:
    commit_silver(settings, job, sales(1, 5))
    lines = [
        *["-- notes"] * comment_lines,
        "SELECT order_id,",
        "       region_code,",
        "       CAST(region_code AS INTEGER) AS code",
        "FROM silver",
    ]
    line = lines.index("       CAST(region_code AS INTEGER) AS code") + 1  # 3, then 9
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"casts": "\n".join(lines)}, skip_profile=True)
    details = caught.value.details()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("model 'casts': Conversion Error: Could not convert string")
    pointer = f"LINE {line}: {lines[line - 1]}"
    caret = " " * (len(f"LINE {line}: ") + lines[line - 1].index("CAST")) + "^"
    assert details.endswith(f"\n\n{pointer}\n{caret}"), details
    assert "COPY" not in details and "s3://" not in details


def test_a_runtime_error_without_a_position_shows_no_statement(
    gold, settings: Settings, job: JobKey
) -> None:
    commit_silver(settings, job, sales(1, 2))
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"raises": "SELECT error('boom ' || order_id) AS e\nFROM silver"})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "model 'raises': Invalid Input Error: boom 1"


def test_a_model_ending_in_a_line_comment_builds(gold, settings: Settings, job: JobKey) -> None:
    # The service wraps the query in its own statement; the comment must end before it.
    commit_silver(settings, job, sales(1, 4))
    result = build(gold, job, {"n": "SELECT count(*) AS n FROM silver -- all of them"})
    assert read_model(settings, result, "n").item() == 4


def test_the_profile_of_a_wide_table_is_not_held_to_the_model_sql_limit(
    gold, settings: Settings, job: JobKey
) -> None:
    frame = pl.DataFrame(
        {
            f"column_{i:03d}": [None if (row + i) % 7 == 0 else row * i for row in range(12)]
            for i in range(250)
        }
    )
    commit_silver(settings, job, frame)
    columns = [(name, "BIGINT") for name in frame.columns]
    assert len(profile_sql(columns)) > MAX_SQL_CHARS  # what a model may not send
    profile = read_model(settings, build(gold, job), "profile")
    assert profile["column_name"].to_list() == frame.columns
    assert profile["null_count"].to_list() == [frame[c].null_count() for c in frame.columns]
    assert profile["distinct_count"].to_list() == [
        frame[c].drop_nulls().n_unique() for c in frame.columns
    ]
    assert set(profile["row_count"].to_list()) == {frame.height}
