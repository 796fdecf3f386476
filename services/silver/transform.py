"""Pure polars transforms for silver: names, cleaning, casting, rule checks and dedupe.

No I/O and no gRPC: every function takes LazyFrames, DataFrames or expressions and returns
new ones. Casting is strict: polars' own casts already refuse `1.5`, `1e3`, `1_000` and
`0x10` as integers; floats must be finite; dates and timestamps must match a format.
A value that fails is never silently null: its row goes to quarantine.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from services.silver.model import ColumnRule, Expectation, SilverType

# Bronze audit columns silver carries, as (bronze name, silver name).
CARRIED_AUDIT = (
    ("_row_hash", "_row_hash"),
    ("_source_key", "_source_key"),
    ("_source_etag", "_source_etag"),
    ("_row_number", "_row_number"),
    ("_ingested_at", "_ingested_at"),
    ("_run_id", "_bronze_run_id"),
)
AUDIT_COLUMNS = (*(silver for _, silver in CARRIED_AUDIT), "_silver_run_id")
QUARANTINE_COLUMNS = ("_rule_id", "_rule", "_column", "_reason")
# Later bronze rows win ties: the order bronze ingested them in.
BRONZE_ORDER = ("_ingested_at", "_source_key", "_row_number")
WHITESPACE = " \t\n\r\x0b\x0c\u00a0\u3000"
# Inference tries these in order; decimal is never inferred (there is no scale to pick).
INFERENCE_ORDER = ("integer", "float", "boolean", "date", "timestamp")
REASON_VALUE_CHARS = 80
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
# ISO 8601 as silver reads it when a timestamp column names no formats ("T" is made " ").
_ISO_TIMESTAMP = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
_TIME_DIRECTIVE = re.compile(r"%[-_0]?(?:[HkIlMSfpPTRXrcs]|\.?[369]?f|:{0,3}z|#z|Z)")
_OFFSET_DIRECTIVE = re.compile(r"%(?::{0,3}z|#z|Z)")


# -- names -------------------------------------------------------------------------------
def snake_case(name: str) -> str:
    """`Customer ID` -> customer_id, `firstName` -> first_name, `Prénom` -> prénom."""
    text = unicodedata.normalize("NFC", name).strip()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^\w]+", "_", text.lower())
    return re.sub(r"_+", "_", text).strip("_")


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


# -- cleaning and casting -----------------------------------------------------------------
def dtype(kind: SilverType) -> pl.DataType:
    if kind.name == "decimal":
        return pl.Decimal(kind.precision, kind.scale)
    return {
        "string": pl.String(),
        "integer": pl.Int64(),
        "float": pl.Float64(),
        "boolean": pl.Boolean(),
        "date": pl.Date(),
        "timestamp": pl.Datetime("us"),
    }[kind.name]


def clean_text(text: pl.Expr, column: ColumnRule) -> pl.Expr:
    """Trim, then null markers (compared after trimming), then case."""
    if column.trim:
        text = text.str.strip_chars(WHITESPACE)
    if column.null_markers:
        text = pl.when(~text.is_in(list(column.null_markers))).then(text)
    if column.case == "lower":
        text = text.str.to_lowercase()
    elif column.case == "upper":
        text = text.str.to_uppercase()
    return text


Parser = Callable[[pl.Expr], pl.Expr]


def parsers(kind: SilverType, formats: Sequence[str] = ()) -> list[Parser]:
    """Attempts, in order, that turn text into a value of the type (null: not a value).

    Silver tries an attempt only on the values every earlier attempt refused, so a column
    whose values all match the first format costs one parse per value.
    """
    if kind.name == "string":
        return [lambda text: text]
    if kind.name in ("integer", "decimal"):
        return [lambda text: text.cast(dtype(kind), strict=False)]
    if kind.name == "float":

        def finite(text: pl.Expr) -> pl.Expr:
            number = text.cast(pl.Float64, strict=False)
            return pl.when(number.is_finite()).then(number)

        return [finite]
    if kind.name == "boolean":
        mapping = {v: True for v in _TRUE} | {v: False for v in _FALSE}
        return [
            lambda text: text.str.to_lowercase().replace_strict(
                mapping, default=None, return_dtype=pl.Boolean
            )
        ]
    if kind.name == "date":
        return [_strptime(f, as_date=True) for f in formats or ("%Y-%m-%d",)]
    if kind.name == "timestamp":
        if formats:
            return [_strptime(f, as_date=False) for f in formats]
        return [_iso(_strptime(f, as_date=False)) for f in _ISO_TIMESTAMP]
    raise ValueError(f"unknown type {kind}")


def _iso(parse: Parser) -> Parser:
    return lambda text: parse(text.str.replace("T", " ", literal=True))


def _strptime(fmt: str, as_date: bool) -> Parser:
    def parse(text: pl.Expr) -> pl.Expr:
        if as_date and not _TIME_DIRECTIVE.search(fmt):
            return text.str.strptime(pl.Date, fmt, strict=False)
        value = text.str.strptime(pl.Datetime("us"), fmt, strict=False)
        if _OFFSET_DIRECTIVE.search(fmt):
            value = value.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return value.dt.date() if as_date else value

    return parse


def parse_literal(text: str, kind: SilverType) -> Any:
    """A spec value (bound, accepted value) as a value of the type; None if it is not one.

    Literals use the type's canonical form (ISO 8601 for dates and timestamps)."""
    value = pl.lit(text, dtype=pl.String)
    for parse in parsers(kind):
        found = pl.select(parse(value)).item()
        if found is not None:
            return found
    return None


def parse_in_order(
    frame: pl.LazyFrame, steps: Sequence[tuple[str, str, list[Parser]]]
) -> pl.LazyFrame:
    """For each (text column, output column, attempts): the first attempt that parses."""
    depth = max((len(attempts) for _, _, attempts in steps), default=0)
    for step in range(depth):
        exprs = []
        for text, out, attempts in steps:
            if step >= len(attempts):
                continue
            if step == 0:
                exprs.append(attempts[0](pl.col(text)).alias(out))
            else:
                left = pl.when(pl.col(out).is_null()).then(pl.col(text))
                exprs.append(pl.coalesce(pl.col(out), attempts[step](left)).alias(out))
        frame = frame.with_columns(exprs)
    return frame


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
        return ~value.str.contains(f"^(?:{rule.pattern})$")
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
            (f"__k{i}", c.target, parsers(k, c.formats))
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


def quarantine_frame(
    frame: pl.LazyFrame,
    reject: str,
    checks: Sequence[Check],
    bronze_columns: Sequence[str],
    columns: Sequence[ColumnRule],
    silver_run_id: str,
) -> pl.LazyFrame:
    """Rejected rows once each: the first rule failed (id, rule, column, a reason showing
    the value), the original text of every bronze column, and the audit columns."""
    by_target = {c.target: c for c in columns}
    position = {name: i for i, name in enumerate(bronze_columns)}
    rules, names, reasons = [], [], []
    for c in checks:
        hit = pl.col(reject) == c.rule_id
        spec = by_target[c.column]
        if c.rule == "cast":
            why = cast_reason(pl.col(f"__raw{position[spec.source]}"), spec)
        elif c.rule == "required":
            why = pl.lit("the value is missing (empty or a null marker)")
        else:
            why = failure_reason(c.expectation, pl.col(c.column))  # type: ignore[arg-type]
        rules.append((hit, pl.lit(c.rule)))
        names.append((hit, pl.lit(c.column)))
        reasons.append((hit, why))
    taken = set(QUARANTINE_COLUMNS) | set(AUDIT_COLUMNS)
    originals = [
        pl.col(f"__raw{i}").alias(f"{name}_original" if name in taken else name)
        for i, name in enumerate(bronze_columns)
    ]
    return frame.filter(pl.col(reject).is_not_null()).select(
        pl.col(reject).alias("_rule_id"),
        cases(rules).alias("_rule"),
        cases(names).alias("_column"),
        cases(reasons).alias("_reason"),
        *originals,
        *(s for _, s in CARRIED_AUDIT),
        pl.lit(silver_run_id).alias("_silver_run_id"),
    )


def shown(value: pl.Expr) -> pl.Expr:
    """A value quoted for a message, cut to REASON_VALUE_CHARS characters."""
    text = value.cast(pl.String)
    cut = (
        pl.when(text.str.len_chars() > REASON_VALUE_CHARS)
        .then(pl.concat_str([text.str.slice(0, REASON_VALUE_CHARS), pl.lit("...")]))
        .otherwise(text)
    )
    return pl.concat_str([pl.lit("'"), cut, pl.lit("'")])


def cast_reason(raw: pl.Expr, column: ColumnRule) -> pl.Expr:
    kind = column.type or SilverType("string")
    text = f" is not a valid {kind}"
    if column.formats:
        text += f" (formats: {', '.join(column.formats)})"
    return pl.concat_str([shown(raw), pl.lit(text[:300])])


def failure_reason(rule: Expectation, value: pl.Expr) -> pl.Expr:
    if rule.type == "not_null":
        return pl.lit("the value is null")
    if rule.type == "accepted_values":
        return pl.concat_str(
            [shown(value), pl.lit(" is not one of: " + ", ".join(rule.values)[:200])]
        )
    if rule.type == "range":
        bounds = f"[{'' if rule.min is None else rule.min}, {'' if rule.max is None else rule.max}]"
        return pl.concat_str([shown(value), pl.lit(" is outside " + bounds)])
    if rule.type == "regex":
        return pl.concat_str([shown(value), pl.lit(" does not match " + rule.pattern[:200])])
    if rule.type == "length":
        low = "" if rule.min_length is None else str(rule.min_length)
        high = "" if rule.max_length is None else str(rule.max_length)
        length = value.str.len_chars().cast(pl.String)
        return pl.concat_str([pl.lit("length "), length, pl.lit(f" is outside [{low}, {high}]")])
    if rule.type == "unique":
        return pl.concat_str([shown(value), pl.lit(" is not unique")])
    raise ValueError(rule.type)


# -- dedupe --------------------------------------------------------------------------------------
def bucket(keys: Sequence[str], buckets: int) -> pl.Expr:
    """Which dedupe bucket a row belongs to: rows with equal keys share one."""
    return (pl.struct(list(keys)).hash(seed=0x5EED) % buckets).cast(pl.UInt32)


@dataclass(frozen=True)
class Deduped:
    kept: pl.DataFrame
    key_rows: pl.DataFrame  # columns n (rows that shared a key), keys (how many keys)
    ties: int


def dedupe(rows: pl.DataFrame, keys: Sequence[str], sequence_by: str, tie_breaker: str) -> Deduped:
    """Latest wins per key: the largest sequence_by, then tie_breaker, then the later bronze
    row. Only the ordering columns are sorted; in key order the last row of each run of
    equal keys wins, and a tie is a winner whose sequence value equals the runner-up's."""
    order = list(
        dict.fromkeys([*keys, *(c for c in (sequence_by, tie_breaker) if c), *BRONZE_ORDER])
    )
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
    kept = rows[ordered.filter(winner).get_column("__index")]
    return Deduped(kept, key_rows, ties)


def duplicated_values(kept: pl.DataFrame, column: str) -> pl.DataFrame:
    """Non-null values of a column and how many kept rows hold each (for unique rules)."""
    return kept.filter(pl.col(column).is_not_null()).group_by(column).len("n")


# -- inference and drift ------------------------------------------------------------------------
def inference_frame(bronze: pl.LazyFrame, columns: Sequence[ColumnRule]) -> pl.LazyFrame:
    """One row: for each column and candidate type, whether every non-null value parses
    (`{i}:{type}`), and whether the column has any value at all (`{i}:any`)."""
    exprs = []
    for i, column in enumerate(columns):
        text = clean_text(pl.col(column.source), column)
        exprs.append(text.is_not_null().any().alias(f"{i}:any"))
        for name in INFERENCE_ORDER:
            attempts = parsers(SilverType(name))
            parsed = attempts[0](text)
            for attempt in attempts[1:]:
                parsed = pl.coalesce(parsed, attempt(text))
            exprs.append((text.is_null() | parsed.is_not_null()).all().alias(f"{i}:{name}"))
    return bronze.select(exprs)


def inferred_type(has_values: bool, parses: dict[str, bool]) -> SilverType:
    """The first candidate every value parses as; string for all-null or mixed columns."""
    if has_values:
        for name in INFERENCE_ORDER:
            if parses.get(name):
                return SilverType(name)
    return SilverType("string")


def drift(
    previous: Sequence[tuple[str, str]], current: Sequence[tuple[str, str]]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str, str]]]:
    """Columns added, removed and retyped between two schemas of (name, type)."""
    old, new = dict(previous), dict(current)
    added = [(n, t) for n, t in current if n not in old]
    removed = [(n, t) for n, t in previous if n not in new]
    retyped = [(n, old[n], t) for n, t in current if n in old and old[n] != t]
    return added, removed, retyped
