"""The quarantine: each rejected row once, with the rule, the column and a reason."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from flowforge.silver_columns import AUDIT_COLUMNS, CARRIED_AUDIT
from flowforge.specs.silver_model import ColumnRule, Expectation, NumberFormat, SilverType
from services.silver.transform import QUARANTINE_COLUMNS, Check, cases

REASON_VALUE_CHARS = 80


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
    if column.number != NumberFormat():
        text += f" ({column.number})"
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
