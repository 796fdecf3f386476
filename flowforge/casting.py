"""Cleaning and casting text into silver types, and type inference: pure polars.

Casting is strict: polars' own casts already refuse `1.5`, `1e3`, `1_000` and `0x10` as
integers; floats must be finite; dates and timestamps must match one of their formats.
A value that fails is never silently null: its row goes to quarantine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from flowforge.specs.silver_model import ColumnRule, SilverType

WHITESPACE = " \t\n\r\x0b\x0c\u00a0\u3000"
# Inference tries these in order; decimal is never inferred (there is no scale to pick).
INFERENCE_ORDER = ("integer", "float", "boolean", "date", "timestamp")
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


# -- inference ---------------------------------------------------------------------------------
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
