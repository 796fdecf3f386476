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

from flowforge.dimensions import upload_dimension
from flowforge.layout import Dataset, JobKey
from flowforge.manifest import read_committed
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from services.gold.guard import MAX_SQL_CHARS
from services.gold.profile import profile_sql
from tests.gold.conftest import build, commit_silver, preview, read_model, serving


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


def regions_dimension(store: ObjectStore) -> str:
    name = f"regions_{uuid.uuid4().hex[:8]}"
    csv = "code,name\nN,North\nS,South\nE,East\n"  # no W: an inner join drops those rows
    upload_dimension(store, name, csv.encode(), "regions.csv")
    return name


def test_models_read_silver_and_a_dimension_and_commit_together(
    gold, store: ObjectStore, job: JobKey
) -> None:
    silver = pl.concat([sales(1, 20), sales(21, 17)])
    manifest = commit_silver(store, job, sales(1, 20), sales(21, 17))
    dim = regions_dimension(store)
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
    assert read_model(store, result, "by_region").to_dicts() == expected_regions.to_dicts()
    expected_big = silver.filter(pl.col("amount") > 30).select("order_id", "amount", "day")
    assert read_model(store, result, "big_orders").to_dicts() == expected_big.to_dicts()

    assert [m.name for m in result.models] == ["by_region", "big_orders", "profile"]
    big = result.models[1]
    assert big.key == f"gold/{job.workflow_id}/{job.job_id}/run=r1/big_orders.parquet"
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
    assert (result.layer, result.run_id, result.input_run_id) == ("gold", "r1", manifest.run_id)
    assert result.rows_in == silver.height
    assert result.rows_out == sum(m.rows for m in result.models)

    committed = read_committed(store, Dataset.for_layer("gold", job))
    assert committed is not None and committed.manifest.run_id == "r1"
    assert [o.key for o in committed.manifest.data_objects] == [m.key for m in result.models]
    assert committed.manifest.inputs["dimensions"][dim] == {"version": 0}


def test_profile_counts_nulls_ties_and_unicode(gold, store: ObjectStore, job: JobKey) -> None:
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
    commit_silver(store, job, frame.head(5), frame.tail(3))
    result = build(gold, job)
    profile = read_model(store, result, "profile")

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
    gold, store: ObjectStore, job: JobKey
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
    commit_silver(store, job, frame)
    profile = read_model(store, build(gold, job), "profile")
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
    gold, channel, store: ObjectStore, job: JobKey
) -> None:
    commit_silver(store, job, sales(1, 10))
    first = build(gold, job, {"totals": "SELECT count(*) AS orders FROM silver"}, run_id="good")
    before = {m.key: store.get_bytes(m.key) for m in first.models}
    failing = {
        "totals": "SELECT count(*) AS orders FROM silver",
        "broken": "SELECT CAST(region_code AS INTEGER) AS code FROM silver",
    }
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, failing, run_id="bad")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "model 'broken'" in caught.value.details()
    assert "Could not convert string" in caught.value.details()

    committed = read_committed(store, Dataset.for_layer("gold", job))
    assert committed is not None and committed.manifest.run_id == "good"
    assert {key: store.get_bytes(key) for key in before} == before
    assert list(store.list(Dataset.for_layer("gold", job).run_prefix("bad"))) == []
    assert serving(channel)


def test_missing_silver_is_a_failed_precondition(gold, job: JobKey) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"m": "SELECT 1 AS one FROM silver"})
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "silver has not been committed for job" in caught.value.details()


def test_a_missing_dimension_is_named(gold, store: ObjectStore, job: JobKey) -> None:
    commit_silver(store, job, sales(1, 3))
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"m": "SELECT * FROM dim_nowhere"}, dimensions=["nowhere"])
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "dimension 'nowhere' has not been committed" in caught.value.details()


def test_repeating_a_run_id_returns_the_committed_result(
    gold, store: ObjectStore, job: JobKey
) -> None:
    commit_silver(store, job, sales(1, 4))
    first = build(gold, job, {"m": "SELECT count(*) AS n FROM silver"}, run_id="once")
    again = build(gold, job, {"m": "SELECT 2 AS n"}, run_id="once")
    assert again.reused and not first.reused
    assert [(m.key, m.rows, m.preview_json) for m in again.models] == [
        (m.key, m.rows, m.preview_json) for m in first.models
    ]


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
    manifest = commit_silver(store, job, sales(1, 5), sales(6, 5))
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

    store.delete_keys([manifest.data_objects[1].key])  # silver now lists a missing file
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"all": "SELECT * FROM silver"})
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    secret = settings.s3_secret_access_key.get_secret_value()  # type: ignore[union-attr]
    assert caught.value.details().startswith("reading silver: the object store answered 404")
    assert "part-00001.parquet" in caught.value.details()
    assert secret not in caught.value.details()
    logged = [str(r.__dict__) for r in caplog.records]
    assert any("FAILED_PRECONDITION" in line for line in logged)  # the request's log line
    assert not any(secret in line for line in logged)
    assert serving(channel)


def test_a_syntax_error_names_the_model_with_duckdbs_pointer(
    gold, channel, store: ObjectStore, job: JobKey
) -> None:
    commit_silver(store, job, sales(1, 3))
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"fine": "SELECT 1 AS one", "typo": "SELEC 1"})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details()
    assert details.startswith("model 'typo': Parser Error: syntax error at or near \"SELEC\""), (
        details
    )
    assert details.endswith("\n\nLINE 1: SELEC 1\n        ^")  # the caret under SELEC
    assert read_committed(store, Dataset.for_layer("gold", job)) is None
    assert serving(channel)


def test_profile_only_build_on_an_empty_part(gold, store: ObjectStore, job: JobKey) -> None:
    commit_silver(store, job, sales(1, 0))
    result = build(gold, job)
    assert [m.name for m in result.models] == ["profile"]
    profile = read_model(store, result, "profile")
    assert profile["row_count"].to_list() == [0, 0, 0, 0]
    assert json.loads(result.models[0].preview_json)[0]["column_name"] == "order_id"


def test_concurrent_builds_each_get_their_own_database(gold, store: ObjectStore) -> None:
    jobs = [JobKey(f"wf-{uuid.uuid4().hex[:10]}", "job") for _ in range(3)]
    for n, job in enumerate(jobs, start=1):
        commit_silver(store, job, sales(1, 10 * n))
    sql = {"totals": "SELECT count(*) AS orders, sum(amount) AS amount FROM silver"}
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda j: build(gold, j, sql, skip_profile=True), jobs))
    for n, result in enumerate(results, start=1):
        expected = sales(1, 10 * n).select(pl.len().alias("orders"), pl.col("amount").sum())
        assert read_model(store, result, "totals").to_dicts() == expected.to_dicts()


@pytest.mark.parametrize("comment_lines", [0, 6])
def test_a_runtime_error_quotes_the_models_own_line(
    gold, store: ObjectStore, job: JobKey, comment_lines: int
) -> None:
    commit_silver(store, job, sales(1, 5))
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
    gold, store: ObjectStore, job: JobKey
) -> None:
    commit_silver(store, job, sales(1, 2))
    with pytest.raises(grpc.RpcError) as caught:
        build(gold, job, {"raises": "SELECT error('boom ' || order_id) AS e\nFROM silver"})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "model 'raises': Invalid Input Error: boom 1"


def test_a_model_ending_in_a_line_comment_builds(gold, store: ObjectStore, job: JobKey) -> None:
    # The service wraps the query in its own statement; the comment must end before it.
    commit_silver(store, job, sales(1, 4))
    result = build(gold, job, {"n": "SELECT count(*) AS n FROM silver -- all of them"})
    assert read_model(store, result, "n").item() == 4


def test_the_profile_of_a_wide_table_is_not_held_to_the_model_sql_limit(
    gold, store: ObjectStore, job: JobKey
) -> None:
    frame = pl.DataFrame(
        {
            f"column_{i:03d}": [None if (row + i) % 7 == 0 else row * i for row in range(12)]
            for i in range(250)
        }
    )
    commit_silver(store, job, frame)
    columns = [(name, "BIGINT") for name in frame.columns]
    assert len(profile_sql(columns)) > MAX_SQL_CHARS  # what a model may not send
    profile = read_model(store, build(gold, job), "profile")
    assert profile["column_name"].to_list() == frame.columns
    assert profile["null_count"].to_list() == [frame[c].null_count() for c in frame.columns]
    assert profile["distinct_count"].to_list() == [
        frame[c].drop_nulls().n_unique() for c in frame.columns
    ]
    assert set(profile["row_count"].to_list()) == {frame.height}
