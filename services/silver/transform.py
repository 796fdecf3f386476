"""Pure polars transforms for silver: names, typed rows with rule flags, dedupe, drift.

No I/O and no gRPC: every function takes LazyFrames, DataFrames or expressions and returns
new ones. Cleaning and casting live in casting.py, the quarantine rows in quarantine.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from flowforge.casting import clean_text, dtype, parse_in_order, parse_literal, parsers
from flowforge.silver_columns import CARRIED_AUDIT
from flowforge.specs.silver import snake_case, whole_value
from flowforge.specs.silver_model import ColumnRule, Expectation, SilverType

QUARANTINE_COLUMNS = ("_rule_id", "_rule", "_column", "_reason")
# Later bronze rows win ties: the order bronze ingested them in.
BRONZE_ORDER = ("_ingested_at", "_source_key", "_row_number")


# -- names -------------------------------------------------------------------------------
def default_targets(sources: Sequence[str]) -> tuple[list[str], list[str]]:
    """snake_case target names for bronze columns, made unique; and warnings about it."""
    names: list[str] = []
    warnings: list[str] = []
    taken: set[str] = set()
    for index, source in enumerate(sources, start=1):
        base = snake_case(source) or f"column_{index}"
        name, suffix = base, 2
        while name in taken:
            name = f"{base}_{suffix}"
            suffix += 1
        if name != base:
            warnings.append(f"column {source!r} is also {base!r} in snake_case; named it {name!r}")
        taken.add(name)
        names.append(name)
    return names, warnings


# -- checks ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One counted check: an implicit cast/required rule or an expectation."""

    rule_id: str
    rule: str
    column: str
    action: str
    flag: str  # the boolean column that marks failing rows
    expectation: Expectation | None = None


def implicit_checks(columns: Sequence[ColumnRule]) -> list[Check]:
    checks = []
    for index, column in enumerate(columns):
        if column.type is not None and column.type.name != "string":
            checks.append(
                Check(f"cast_{column.target}", "cast", column.target, "drop", f"__c{index}")
            )
        if column.required:
            checks.append(
                Check(f"required_{column.target}", "required", column.target, "drop", f"__m{index}")
            )
    return checks


def row_checks(expectations: Sequence[Expectation]) -> list[Check]:
    return [
        Check(e.id, e.type, e.column, e.action, f"__f{index}", e)
        for index, e in enumerate(expectations)
        if e.type != "unique"
    ]


def unique_checks(expectations: Sequence[Expectation]) -> list[Check]:
    return [
        Check(e.id, e.type, e.column, e.action, f"__u{index}", e)
        for index, e in enumerate(expectations)
        if e.type == "unique"
    ]


def failure_condition(rule: Expectation, kind: SilverType) -> pl.Expr:
    """True when a typed value fails a row-level rule; null passes all but not_null."""
    value = pl.col(rule.column)
    if rule.type == "not_null":
        return value.is_null()
    if rule.type == "accepted_values":
        allowed = pl.Series([parse_literal(v, kind) for v in rule.values], dtype=dtype(kind))
        return ~value.is_in(allowed.implode())
    if rule.type == "range":
        failed = pl.lit(False)
        if rule.min is not None:
            failed = failed | (value < pl.lit(parse_literal(rule.min, kind), dtype=dtype(kind)))
        if rule.max is not None:
            failed = failed | (value > pl.lit(parse_literal(rule.max, kind), dtype=dtype(kind)))
        return failed
    if rule.type == "regex":
        return ~value.str.contains(whole_value(rule.pattern))
    if rule.type == "length":
        length = value.str.len_chars()
        failed = pl.lit(False)
        if rule.min_length is not None:
            failed = failed | (length < rule.min_length)
        if rule.max_length is not None:
            failed = failed | (length > rule.max_length)
        return failed
    raise ValueError(f"{rule.type} is not a row-level rule")


def cases(pairs: Sequence[tuple[pl.Expr, pl.Expr]], dtype: pl.DataType = pl.String()) -> pl.Expr:
    """`when c1 then v1 when c2 then v2 ... otherwise null`, for any number of pairs."""
    if not pairs:
        return pl.lit(None, dtype=dtype)
    chain: Any = pl  # pl.when(...) starts the chain, Then.when(...) extends it
    for condition, value in pairs:
        chain = chain.when(condition).then(value)
    return chain.otherwise(pl.lit(None, dtype=dtype))  # type: ignore[no-any-return]


def first_failed(checks: Sequence[Check]) -> pl.Expr:
    """The id of the first check a row failed, or null."""
    return cases([(pl.col(c.flag), pl.lit(c.rule_id)) for c in checks])


# -- the typed rows ------------------------------------------------------------------------------
def typed_frame(
    bronze: pl.LazyFrame,
    bronze_columns: Sequence[str],
    columns: Sequence[ColumnRule],
    expectations: Sequence[Expectation],
    keep_raw: bool = False,
) -> pl.LazyFrame:
    """One row per bronze row: typed target columns, the carried audit columns, one flag per
    check, `__reject` (the first failed drop rule, null when the row is kept) and, for
    rejected rows (every row when keep_raw), the original text of each bronze column as
    `__raw{i}`."""
    position = {name: i for i, name in enumerate(bronze_columns)}
    frame = bronze.select(
        *(pl.col(name).alias(f"__raw{i}") for i, name in enumerate(bronze_columns)),
        *(pl.col(b).alias(s) for b, s in CARRIED_AUDIT),
    ).with_columns(
        clean_text(pl.col(f"__raw{position[c.source]}"), c).alias(f"__k{i}")
        for i, c in enumerate(columns)
    )
    kinds = [c.type or SilverType("string") for c in columns]
    frame = parse_in_order(
        frame,
        [
            (f"__k{i}", c.target, parsers(k, c.formats, c.number))
            for i, (c, k) in enumerate(zip(columns, kinds, strict=True))
        ],
    )
    implicit = implicit_checks(columns)
    flags = []
    for i, (c, k) in enumerate(zip(columns, kinds, strict=True)):
        if k.name != "string":
            flags.append(
                (pl.col(f"__k{i}").is_not_null() & pl.col(c.target).is_null()).alias(f"__c{i}")
            )
        if c.required:
            flags.append(pl.col(f"__k{i}").is_null().alias(f"__m{i}"))
    if flags:
        frame = frame.with_columns(flags)
    cast_ok = ~pl.any_horizontal([pl.col(c.flag) for c in implicit]) if implicit else pl.lit(True)
    rules = row_checks(expectations)
    by_target = dict(zip((c.target for c in columns), kinds, strict=True))
    frame = frame.with_columns(__cast_ok=cast_ok)
    if rules:
        frame = frame.with_columns(
            (
                pl.col("__cast_ok")
                & failure_condition(r.expectation, by_target[r.column]).fill_null(False)  # type: ignore[arg-type]
            ).alias(r.flag)
            for r in rules
        )
    dropping = [*implicit, *(r for r in rules if r.action == "drop")]
    frame = frame.with_columns(__reject=first_failed(dropping))
    raw = [f"__raw{i}" for i in range(len(bronze_columns))]
    if not keep_raw:
        frame = frame.with_columns(
            pl.when(pl.col("__reject").is_not_null()).then(pl.col(name)).alias(name) for name in raw
        )
    return frame.select(
        *(c.target for c in columns),
        *(s for _, s in CARRIED_AUDIT),
        *(c.flag for c in [*implicit, *rules]),
        "__cast_ok",
        "__reject",
        *raw,
    )


def quality_counts(
    typed: pl.LazyFrame,
    columns: Sequence[ColumnRule],
    expectations: Sequence[Expectation],
    keys: Sequence[str],
) -> pl.LazyFrame:
    """Per first-failed rule (null: kept rows): rows, failures per check, rows that failed a
    cast or required check, and kept rows with a null dedupe key."""
    checks = [*implicit_checks(columns), *row_checks(expectations)]
    null_key = pl.any_horizontal([pl.col(k).is_null() for k in keys]) if keys else pl.lit(False)
    return typed.group_by("__reject").agg(
        pl.len().alias("__rows"),
        (~pl.col("__cast_ok")).sum().alias("__cast_failed"),
        (pl.col("__reject").is_null() & null_key).sum().alias("__null_keys"),
        *(pl.col(c.flag).sum().alias(c.flag) for c in checks),
    )


# -- dedupe --------------------------------------------------------------------------------------
def bucket(keys: Sequence[str], buckets: int) -> pl.Expr:
    """Which dedupe bucket a row belongs to: rows with equal keys share one."""
    return (pl.struct(list(keys)).hash(seed=0x5EED) % buckets).cast(pl.UInt32)


@dataclass(frozen=True)
class Deduped:
    kept: pl.DataFrame
    key_rows: pl.DataFrame  # columns n (rows that shared a key), keys (how many keys)
    ties: int
    rows_per_key: pl.Series  # for each kept row, how many rows shared its key


def ordering(sequence_by: str, tie_breaker: str) -> list[str]:
    """The columns that decide which row of a key is the latest, most significant first."""
    return list(dict.fromkeys([*(c for c in (sequence_by, tie_breaker) if c), *BRONZE_ORDER]))


def dedupe(rows: pl.DataFrame, keys: Sequence[str], sequence_by: str, tie_breaker: str) -> Deduped:
    """Latest wins per key: the largest sequence_by, then tie_breaker, then the later bronze
    row. Only the ordering columns are sorted; in key order the last row of each run of
    equal keys wins, and a tie is a winner whose sequence value equals the runner-up's."""
    order = list(dict.fromkeys([*keys, *ordering(sequence_by, tie_breaker)]))
    ordered = (
        rows.select(order)
        .with_row_index("__index")
        .sort(order, nulls_last=False)
        .with_columns(__run=pl.struct(list(keys)).rle_id())
    )
    run = pl.col("__run")
    winner = run != run.shift(-1, fill_value=-1)
    ties = 0
    if sequence_by:
        seq = pl.col(sequence_by)
        tie = winner & (run == run.shift(1)) & seq.eq_missing(seq.shift(1))
        ties = int(ordered.select(tie.sum()).item())
    key_rows = ordered.group_by("__run").len("n").group_by("n").len("keys")
    winners = ordered.with_columns(__n=pl.len().over("__run")).filter(winner)
    kept = rows[winners.get_column("__index")]
    return Deduped(kept, key_rows, ties, winners.get_column("__n").alias("n"))


# Silver's files are cut by ranges of the first key column (each range's files hold only
# its keys), so that a MERGE of keys in a few ranges reads only their files.
ROWS_PER_RANGE = 50_000
MAX_RANGES = 16


def ranged(dtype: pl.DataType) -> bool:
    """Whether silver's files record a column's least and greatest values (staging.py)."""
    return (dtype.is_numeric() and not dtype.is_decimal()) or dtype in (pl.Date(), pl.String())


def range_cuts(sample: pl.Series) -> pl.Series:
    """Boundaries of up to MAX_RANGES ranges holding about as many of `sample`'s values
    each (`sample` is one hash bucket's keys: a random sample of all). Empty: one range;
    also for types whose ranges a reader cannot prune by (no statistics)."""
    if not ranged(sample.dtype):
        return sample.clear()
    values = sample.drop_nulls().sort()
    ranges = min(max(values.len() // ROWS_PER_RANGE, 1), MAX_RANGES)
    positions = [values.len() * i // ranges for i in range(1, ranges)]
    return values.gather(positions).unique(maintain_order=True)


def range_index(cuts: pl.Series, values: pl.Series) -> pl.Series:
    """Which range each value falls in (a null in the first)."""
    return cuts.search_sorted(values, side="right").fill_null(0).alias("__range")


def duplicated_values(kept: pl.DataFrame, column: str) -> pl.DataFrame:
    """Non-null values of a column and how many kept rows hold each (for unique rules)."""
    return kept.filter(pl.col(column).is_not_null()).group_by(column).len("n")


def drift(
    previous: Sequence[tuple[str, str]], current: Sequence[tuple[str, str]]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str, str]]]:
    """Columns added, removed and retyped between two schemas of (name, type)."""
    old, new = dict(previous), dict(current)
    added = [(n, t) for n, t in current if n not in old]
    removed = [(n, t) for n, t in previous if n not in new]
    retyped = [(n, old[n], t) for n, t in current if n in old and old[n] != t]
    return added, removed, retyped
