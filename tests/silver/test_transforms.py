"""The pure silver transforms: names, cleaning, each type, each rule and action, dedupe."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl
import pytest

from flowforge import casting
from flowforge.specs.silver_model import ColumnRule, Expectation, SilverType
from services.silver import transform

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Customer ID", "customer_id"),
        ("firstName", "first_name"),
        ("HTTPServerName", "http_server_name"),
        ("E-mail Address", "e_mail_address"),
        ("  __Total $ (EUR)__ ", "total_eur"),
        ("Prénom", "prénom"),
        ("名前", "名前"),
        ("2024 sales", "2024_sales"),
        ("!!!", ""),
    ],
)
def test_snake_case(name: str, expected: str) -> None:
    assert transform.snake_case(name) == expected


def test_default_targets_are_unique_and_never_empty() -> None:
    names, warnings = transform.default_targets(["First Name", "first_name", "!!!", "firstName"])
    assert names == ["first_name", "first_name_2", "column_3", "first_name_3"]
    assert len(warnings) == 2 and "'first_name_2'" in warnings[0]


def parse(values: list[str | None], kind: str, formats: tuple[str, ...] = ()) -> list[object]:
    """Runs a type's attempts the way typed_frame does, on one text column."""
    rules = ColumnRule("v", "out", parse_type(kind), formats=formats, null_markers=())
    frame = casting.parse_in_order(
        pl.LazyFrame({"v": values}, schema={"v": pl.String}),
        [("v", "out", casting.parsers(rules.type, formats))],  # type: ignore[arg-type]
    )
    return frame.collect().get_column("out").to_list()


def parse_type(text: str) -> SilverType:
    from flowforge.specs.silver import parse_type as parse

    return parse(text, "type")


def test_integer_accepts_signs_and_leading_zeros_only() -> None:
    values = ["+5", "-5", "007", "1e3", "1.5", "1_000", "0x10", "99999999999999999999", "٣"]
    assert parse(values, "integer") == [5, -5, 7, None, None, None, None, None, None]


def test_float_accepts_exponents_but_not_nan_or_infinity() -> None:
    values = ["1e3", "-2.5E-2", ".5", "5.", "NaN", "inf", "1e999", "1,5"]
    assert parse(values, "float") == [1000.0, -0.025, 0.5, 5.0, None, None, None, None]


def test_decimal_rounds_to_its_scale_and_refuses_overflow() -> None:
    values = ["4539.33", "-0.5", "1e3", "12.345", "12345678901.00", "abc"]
    assert parse(values, "decimal(12,2)") == [
        Decimal("4539.33"),
        Decimal("-0.50"),
        Decimal("1000.00"),
        Decimal("12.34"),  # half to even
        None,  # eleven integer digits do not fit decimal(12,2)
        None,
    ]


def test_boolean_words() -> None:
    values = ["true", "FALSE", "Yes", "n", "1", "0", "maybe"]
    assert parse(values, "boolean") == [True, False, True, False, True, False, None]


def test_date_tries_formats_in_order() -> None:
    values = ["2024-03-31", "31/03/2024", "2024-02-30", "31/02/2024", "not a date"]
    assert parse(values, "date", ("%Y-%m-%d", "%d/%m/%Y")) == [
        date(2024, 3, 31),
        date(2024, 3, 31),
        None,
        None,
        None,
    ]
    assert parse(["2024-03-31", "31/03/2024"], "date") == [date(2024, 3, 31), None]


def test_timestamp_reads_iso_8601_and_converts_offsets_to_utc() -> None:
    values = [
        "2024-01-26T10:00:00",
        "2024-01-26 10:00:00.250",
        "2024-01-26T10:00:00Z",
        "2024-01-26T12:00:00+02:00",
        "2024-01-26T10:00",
        "2024-01-26",
        "2024-13-01T00:00:00",
        "26/01/2024 10:00",
    ]
    assert parse(values, "timestamp") == [
        datetime(2024, 1, 26, 10),
        datetime(2024, 1, 26, 10, 0, 0, 250000),
        datetime(2024, 1, 26, 10),
        datetime(2024, 1, 26, 10),
        datetime(2024, 1, 26, 10),
        datetime(2024, 1, 26),
        None,
        None,
    ]
    assert parse(["26/01/2024 10:00"], "timestamp", ("%d/%m/%Y %H:%M",)) == [
        datetime(2024, 1, 26, 10)
    ]


def test_clean_text_trims_maps_null_markers_then_cases() -> None:
    column = ColumnRule("v", "v", SilverType("string"), case="lower")
    frame = pl.DataFrame({"v": ["  A@B.COM\u00a0", " N/A ", "", "null", "NULL", None, "x\ty"]})
    cleaned = frame.select(casting.clean_text(pl.col("v"), column)).get_column("v").to_list()
    assert cleaned == ["a@b.com", None, None, None, None, None, "x\ty"]
    untouched = ColumnRule("v", "v", SilverType("string"), trim=False, null_markers=("-",))
    kept = frame.select(casting.clean_text(pl.col("v"), untouched)).get_column("v").to_list()
    assert kept == ["  A@B.COM\u00a0", " N/A ", "", "null", "NULL", None, "x\ty"]


def bronze(rows: dict[str, list[str | None]]) -> pl.LazyFrame:
    n = len(next(iter(rows.values())))
    audit = {
        "_ingested_at": [T0] * n,
        "_source_key": ["landing/a.csv"] * n,
        "_source_etag": ["e"] * n,
        "_row_number": list(range(1, n + 1)),
        "_row_hash": list(range(n)),
        "_run_id": ["b1"] * n,
    }
    return pl.LazyFrame({**rows, **audit})


def test_typed_frame_flags_first_failed_drop_rule_and_keeps_raw_for_rejects() -> None:
    columns = [
        ColumnRule("id", "id", SilverType("integer"), required=True),
        ColumnRule("amount", "amount", SilverType("decimal", 6, 2)),
        ColumnRule("email", "email", SilverType("string"), case="lower"),
    ]
    rules = [
        Expectation("email_format", "regex", "email", action="drop", pattern=r"[^@]+@[^@]+"),
        Expectation("amount_range", "range", "amount", action="warn", min="0", max="100"),
    ]
    frame = bronze(
        {
            "id": ["1", "x", "", "4", "5"],
            "amount": ["10", "5", "1", "abc", "500"],
            "email": ["A@B.C", "a@b.c", "a@b.c", "no-at", "no-at"],
        }
    )
    typed = transform.typed_frame(frame, ["id", "amount", "email"], columns, rules).collect()
    assert typed.get_column("__reject").to_list() == [
        None,
        "cast_id",
        "required_id",
        "cast_amount",
        "email_format",
    ]
    assert typed.get_column("id").to_list() == [1, None, None, 4, 5]
    assert typed.get_column("email").to_list()[0] == "a@b.c"
    # Rules run on rows whose casts passed; a warn rule flags but never rejects.
    assert typed.get_column("__f1").to_list() == [False, False, False, False, True]
    assert typed.get_column("__raw1").to_list() == [None, "5", "1", "abc", "500"]
    assert typed.get_column("_bronze_run_id").to_list() == ["b1"] * 5


@pytest.mark.parametrize(
    ("rule", "kind", "values", "failed"),
    [
        (Expectation("r", "not_null", "v"), "string", ["a", None], [False, True]),
        (
            Expectation("r", "accepted_values", "v", values=("1", "2")),
            "integer",
            ["1", "3", None],
            [False, True, False],
        ),
        (
            Expectation("r", "range", "v", min="2024-01-01"),
            "date",
            ["2023-12-31", "2024-01-01", None],
            [True, False, False],
        ),
        (
            Expectation("r", "range", "v", max="9.5"),
            "float",
            ["9.5", "9.51", "-1e9"],
            [False, True, False],
        ),
        (
            Expectation("r", "regex", "v", pattern="[A-Z]{2}"),
            "string",
            ["DE", "DEU", "de", None],
            [False, True, True, False],
        ),
        (  # whole value: `a|b` is `^(?:a|b)$`, not `^a|b$`
            Expectation("r", "regex", "v", pattern="a|b"),
            "string",
            ["a", "b", "xb", "ax", "ab"],
            [False, False, True, True, True],
        ),
        (  # Rust regex syntax (Python's re has no \p{..})
            Expectation("r", "regex", "v", pattern=r"\p{Lu}\p{Ll}+"),
            "string",
            ["Élodie", "élodie", "Él0die"],
            [False, True, True],
        ),
        (
            Expectation("r", "length", "v", min_length=2, max_length=3),
            "string",
            ["ab", "abcd", "a", "日本語"],
            [False, True, True, False],
        ),
    ],
)
def test_row_rules(
    rule: Expectation, kind: str, values: list[str | None], failed: list[bool]
) -> None:
    columns = [ColumnRule("v", "v", parse_type(kind), null_markers=())]
    typed = transform.typed_frame(bronze({"v": values}), ["v"], columns, [rule]).collect()
    assert typed.get_column("__f0").to_list() == failed


@pytest.mark.parametrize(
    ("action", "rejected"), [("warn", [None, None]), ("drop", [None, "r"]), ("fail", [None, None])]
)
def test_only_drop_rules_reject_rows(action: str, rejected: list[str | None]) -> None:
    columns = [ColumnRule("v", "v", SilverType("string"))]
    rule = Expectation("r", "not_null", "v", action=action)
    typed = transform.typed_frame(bronze({"v": ["a", ""]}), ["v"], columns, [rule]).collect()
    assert typed.get_column("__reject").to_list() == rejected
    assert typed.get_column("__f0").to_list() == [False, True]


def kept_rows(rows: dict[str, list[object]]) -> pl.DataFrame:
    n = len(next(iter(rows.values())))
    return pl.DataFrame(
        {
            **rows,
            "_ingested_at": [T0] * n,
            "_source_key": ["landing/a.csv"] * n,
            "_row_number": list(range(1, n + 1)),
        }
    )


def test_dedupe_latest_wins_and_reports_key_counts() -> None:
    rows = kept_rows(
        {
            "id": [1, 1, 1, 2, 2, 3, None, None],
            "at": [3, 1, 2, 5, None, 1, 1, 2],
            "name": ["c", "a", "b", "e", "null-seq", "z", "n1", "n2"],
        }
    )
    found = transform.dedupe(rows, ["id"], "at", "")
    kept = found.kept.sort("id", nulls_last=True)
    assert kept.get_column("name").to_list() == ["c", "e", "z", "n2"]
    counts = sorted(found.key_rows.iter_rows())
    assert counts == [(1, 1), (2, 2), (3, 1)]  # key counts: 1 key with 1 row, 2 with 2, 1 with 3
    assert found.ties == 0


def test_dedupe_ties_go_to_the_tie_breaker_then_the_later_bronze_row() -> None:
    rows = kept_rows({"id": [1, 1, 2, 2], "at": [5, 5, 7, 7], "version": [2, 1, 1, 1]})
    by_breaker = transform.dedupe(rows, ["id"], "at", "version")
    assert sorted(by_breaker.kept.select("id", "version").iter_rows()) == [(1, 2), (2, 1)]
    assert by_breaker.ties == 2
    by_bronze = transform.dedupe(rows, ["id"], "at", "")
    assert sorted(by_bronze.kept.select("id", "_row_number").iter_rows()) == [(1, 2), (2, 4)]


def test_dedupe_without_keys_drops_exact_duplicates_only() -> None:
    rows = kept_rows({"a": ["x", "x", "x", None, None], "b": [1, 1, 2, None, None]})
    found = transform.dedupe(rows, ["a", "b"], "", "")
    assert sorted(found.kept.select("a", "b").iter_rows(), key=str) == [
        ("x", 1),
        ("x", 2),
        (None, None),
    ]
    assert found.kept.filter(pl.col("a") == "x", pl.col("b") == 1)["_row_number"].item() == 2


def test_duplicated_values_counts_kept_rows_per_non_null_value() -> None:
    kept = kept_rows({"email": ["a@x", "b@x", "a@x", None, None, "a@x"], "id": [1, 2, 3, 4, 5, 6]})
    counts = transform.duplicated_values(kept, "email")
    assert counts.columns == ["email", "n"]
    # Nulls are never duplicates of each other: a null passes a unique rule.
    assert sorted(counts.iter_rows()) == [("a@x", 3), ("b@x", 1)]
    assert transform.duplicated_values(kept.head(0), "email").height == 0


def test_unique_rules_are_checked_after_dedupe_not_per_row() -> None:
    """typed_frame has no flag for unique rules (the second pass counts them over the kept
    rows); every other rule gets one, in order."""
    rules = [
        Expectation("u", "unique", "v", action="warn"),
        Expectation("n", "not_null", "v", action="drop"),
        Expectation("u2", "unique", "v", action="fail"),
    ]
    assert [(c.rule_id, c.flag) for c in transform.row_checks(rules)] == [("n", "__f1")]
    assert [(c.rule_id, c.action, c.flag) for c in transform.unique_checks(rules)] == [
        ("u", "warn", "__u0"),
        ("u2", "fail", "__u2"),
    ]
    columns = [ColumnRule("v", "v", SilverType("string"))]
    typed = transform.typed_frame(bronze({"v": ["a", "a", ""]}), ["v"], columns, rules).collect()
    assert typed.get_column("__reject").to_list() == [None, None, "n"]
    assert not [c for c in typed.columns if c.startswith("__u")]


def test_inference_uses_every_value() -> None:
    columns = [ColumnRule(n, n, None) for n in ("i", "f", "b", "d", "t", "s", "empty", "late")]
    values = {
        "i": ["1", "-2", ""],
        "f": ["1", "2.5", "N/A"],
        "b": ["true", "False", None],
        "d": ["2024-01-01", "2024-02-29", None],
        "t": ["2024-01-01T10:00:00", "2024-01-01", None],
        "s": ["1", "x", None],
        "empty": [None, "", "NULL"],
        "late": ["1", "2", "3.5"],
    }
    inferred = [str(found.type) for found in casting.infer_types(bronze(values), columns)]
    assert inferred == [
        "integer",
        "float",
        "boolean",
        "date",
        "timestamp",
        "string",
        "string",
        "float",
    ]


def test_drift() -> None:
    old = [("id", "Int64"), ("name", "String"), ("gone", "Date")]
    new = [("id", "String"), ("name", "String"), ("added", "Boolean")]
    assert transform.drift(old, new) == (
        [("added", "Boolean")],
        [("gone", "Date")],
        [("id", "Int64", "String")],
    )


def test_range_cuts_split_a_sample_evenly_and_index_values_by_range() -> None:
    sample = pl.Series("id", list(range(4 * transform.ROWS_PER_RANGE))).shuffle(seed=1)
    cuts = transform.range_cuts(sample)
    assert cuts.to_list() == [transform.ROWS_PER_RANGE * i for i in (1, 2, 3)]
    values = pl.Series("id", [0, transform.ROWS_PER_RANGE, 10**9, None])
    assert transform.range_index(cuts, values).to_list() == [0, 1, 3, 0]
    assert transform.range_cuts(sample.head(10)).len() == 0  # too few rows: one range
    decimals = pl.Series([Decimal("1.5")] * transform.ROWS_PER_RANGE * 2)
    assert transform.range_cuts(decimals).len() == 0  # no statistics to prune by


def test_which_row_is_later_is_the_same_in_polars_and_in_the_merges_sql() -> None:
    """newer_or_same (polars) and newer_or_same_sql (run by DuckDB here) against Python's
    own tuple order, a null being smaller than any value."""
    import random

    import duckdb

    from services.silver.precedence import TARGET_SUFFIX, newer_or_same, newer_or_same_sql

    rng = random.Random(5)
    order = ["at", "name"]
    pick = [None, 1, 2], [None, "a", "b"]
    pairs = [[rng.choice(p) for p in (*pick, *pick)] for _ in range(400)]
    source = pl.DataFrame([p[:2] for p in pairs], schema=order, orient="row")
    target = pl.DataFrame([p[2:] for p in pairs], schema=order, orient="row")
    joined = pl.concat([source, target.rename(lambda c: c + TARGET_SUFFIX)], how="horizontal")
    in_polars = joined.select(newer_or_same(order)).to_series().to_list()
    con = duckdb.connect()
    con.register("source_rows", source.to_arrow())
    con.register("target_rows", target.to_arrow())
    sql = f"SELECT {newer_or_same_sql(order)} FROM source_rows s POSITIONAL JOIN target_rows t"
    in_sql = [row[0] for row in con.execute(sql).fetchall()]

    def rank(values: list[object]) -> tuple[object, ...]:
        return tuple((v is not None, v if v is not None else 0) for v in values)

    expected = [rank(p[:2]) >= rank(p[2:]) for p in pairs]
    assert in_polars == expected and in_sql == expected
