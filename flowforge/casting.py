"""Cleaning and casting text into silver types, and type inference: pure polars.

Casting is strict: polars' own casts already refuse `1.5`, `1e3`, `1_000` and `0x10` as
integers; floats must be finite; dates and timestamps must match one of their formats;
thousands separators must group digits by three. A value that fails is never silently
null: its row goes to quarantine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from flowforge.specs.silver_model import ColumnRule, NumberFormat, SilverType

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
_SPACE_CLASS = "[ \u00a0\u202f]"  # what a thousands separator " " matches
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


def parsers(
    kind: SilverType, formats: Sequence[str] = (), number: NumberFormat = NumberFormat()
) -> list[Parser]:
    """Attempts, in order, that turn text into a value of the type (null: not a value).

    Silver tries an attempt only on the values every earlier attempt refused, so a column
    whose values all match the first format costs one parse per value.
    """
    if kind.name == "string":
        return [lambda text: text]
    if kind.name in ("integer", "decimal"):
        return [lambda text: plain_number(text, number).cast(dtype(kind), strict=False)]
    if kind.name == "float":

        def finite(text: pl.Expr) -> pl.Expr:
            value = plain_number(text, number).cast(pl.Float64, strict=False)
            return pl.when(value.is_finite()).then(value)

        return [finite]
    if kind.name == "boolean":
        # when/is_in, not replace_strict: polars' streaming engine runs replace_strict over
        # the whole column at once, which held every value of it in memory.
        def boolean(text: pl.Expr) -> pl.Expr:
            lower = text.str.to_lowercase()
            return (
                pl.when(lower.is_in(_TRUE))
                .then(pl.lit(True))
                .when(lower.is_in(_FALSE))
                .then(pl.lit(False))
            )

        return [boolean]
    if kind.name == "date":
        return [_strptime(f, as_date=True) for f in formats or ("%Y-%m-%d",)]
    if kind.name == "timestamp":
        if formats:
            return [_strptime(f, as_date=False) for f in formats]
        return [_iso(_strptime(f, as_date=False)) for f in _ISO_TIMESTAMP]
    raise ValueError(f"unknown type {kind}")


def plain_number(text: pl.Expr, number: NumberFormat) -> pl.Expr:
    """A number written with the column's separators as polars reads it: thousands
    separators dropped where they group the whole digits by three, the decimal separator
    made '.'; null when a separator is out of place (`1.23.4`, `1,2,3` with decimal ',')."""
    if number.thousands:
        group = _SPACE_CLASS if number.thousands == " " else _char(number.thousands)
        point = _char(number.decimal)
        grouped = (
            rf"^[+-]?[0-9]{{1,3}}(?:{group}[0-9]{{3}})+(?:{point}[0-9]*)?(?:[eE][+-]?[0-9]+)?$"
        )
        text = (
            pl.when(~text.str.contains(group))
            .then(text)
            .when(text.str.contains(grouped))
            .then(text.str.replace_all(group, ""))
        )
    if number.decimal != ".":
        # A '.' left over is neither separator: refused, not read as a decimal point.
        text = pl.when(~text.str.contains(".", literal=True)).then(
            text.str.replace(number.decimal, ".", literal=True)
        )
    return text


def _char(text: str) -> str:
    """One character as a regex that matches it alone, whatever it is."""
    return f"\\x{{{ord(text):X}}}"


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
# A value inferred as a type must read back as the text it came from (after trimming), or
# its column stays text:
#   integer: text == str(int(text)): no leading zero, no '+', no '-0';
#   float: plain decimal notation (an optional '-', no leading zero before a digit, no '+',
#     no exponent, digits on both sides of any '.') with the significant digits of the
#     shortest repr of the float it parses as: `2.50` is 2.5 (a trailing fractional zero is
#     formatting), `12345678901234567890` (more digits than a float holds) is not a float;
#   boolean: true or false, in any case (never yes/no/y/n/t/f: `NO` is Norway);
#   date: text == the date as %Y-%m-%d (`24-01-05` is not the year 24);
#   timestamp: ISO 8601 with a four-digit year and two-digit fields; an offset is applied
#     (the instant is kept, stored in UTC).
_PLAIN_DECIMAL = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$"
_ISO_SHAPE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$"
)
_LEADING_ZERO = re.compile(r"[+-]?0[0-9]")
MAX_SHOWN_CHARS = 80


def faithful(kind: str, text: pl.Expr, value: pl.Expr) -> pl.Expr:
    """Whether a value parsed from `text` as `kind` reads back as that text."""
    if kind == "integer":
        return value.cast(pl.String) == text
    if kind == "float":
        return text.str.contains(_PLAIN_DECIMAL) & (
            significant_digits(text) == significant_digits(value.cast(pl.String))
        )
    if kind == "boolean":
        return text.str.to_lowercase().is_in(["true", "false"])
    if kind == "date":
        return value.dt.to_string("%Y-%m-%d") == text
    if kind == "timestamp":
        return text.str.contains(_ISO_SHAPE)
    raise ValueError(f"{kind} is not inferred")


def significant_digits(number: pl.Expr) -> pl.Expr:
    """`-0.00120` -> `12`, `1.2e-3` -> `12`: the mantissa's digits without the zeros that
    only place them. Two numbers this close (one parsed from the other) with the same
    significant digits are the same number."""
    mantissa = number.str.replace(r"[eE].*$", "").str.replace_all(r"[^0-9]", "")
    return mantissa.str.strip_chars_start("0").str.strip_chars_end("0")


def inference_frame(bronze: pl.LazyFrame, columns: Sequence[ColumnRule]) -> pl.LazyFrame:
    """One row, computed in one streaming pass: for each column and candidate type, whether
    every non-null value parses (`{i}:{type}`) and the first value that parses but would not
    read back as its text (`{i}:{type}:lost`, its text and value); and whether the column
    has any value (`{i}:any`)."""
    # Each value is cleaned and parsed once, into columns the aggregations then read.
    texts = [clean_text(pl.col(c.source), c).alias(f"{i}:text") for i, c in enumerate(columns)]
    values = []
    exprs = []
    for i in range(len(columns)):
        text = pl.col(f"{i}:text")
        exprs.append(text.is_not_null().any().alias(f"{i}:any"))
        for name in INFERENCE_ORDER:
            attempts = parsers(SilverType(name))
            parsed = attempts[0](text)
            for attempt in attempts[1:]:
                parsed = pl.coalesce(parsed, attempt(text))
            values.append(parsed.alias(f"{i}:{name}:value"))
            value = pl.col(f"{i}:{name}:value")
            exprs.append((text.is_null() | value.is_not_null()).all().alias(f"{i}:{name}"))
            lost = pl.when(value.is_not_null() & ~faithful(name, text, value)).then(
                pl.struct(text=text, value=value.cast(pl.String))
            )
            exprs.append(lost.first(ignore_nulls=True).alias(f"{i}:{name}:lost"))
    return bronze.select(texts).with_columns(values).select(exprs)


@dataclass(frozen=True)
class Evidence:
    """What a pass over a column's values saw, enough to pick its type. Passes over parts
    of the rows (batches) merge: the type is then the one every part allows."""

    any: bool = False  # some value is not null
    parses: tuple[str, ...] = INFERENCE_ORDER  # types every non-null value parses as
    # per type: the first value that parses but would not read back, as (text, value)
    lost: dict[str, tuple[str, str]] = field(default_factory=dict)

    def merged(self, later: Evidence) -> Evidence:
        return Evidence(
            self.any or later.any,
            tuple(name for name in self.parses if name in later.parses),
            {**later.lost, **self.lost},  # the earlier value is the first
        )

    def as_dict(self) -> dict[str, Any]:
        return {"any": self.any, "parses": list(self.parses), "lost": dict(self.lost)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        lost = {name: (pair[0], pair[1]) for name, pair in (data.get("lost") or {}).items()}
        return cls(bool(data["any"]), tuple(data["parses"]), lost)


@dataclass(frozen=True)
class Inferred:
    type: SilverType
    warning: str = ""  # why the column is text, when a type was close


def gather_evidence(frame: pl.LazyFrame, columns: Sequence[ColumnRule]) -> list[Evidence]:
    """Each column's Evidence, from one streaming pass over `frame`."""
    if not columns:
        return []
    row = inference_frame(frame, columns).collect(engine="streaming").row(0, named=True)
    found = []
    for i in range(len(columns)):
        lost = {
            name: (pair["text"], pair["value"])
            for name in INFERENCE_ORDER
            if (pair := row[f"{i}:{name}:lost"]) is not None
        }
        parses = tuple(name for name in INFERENCE_ORDER if row[f"{i}:{name}"])
        found.append(Evidence(bool(row[f"{i}:any"]), parses, lost))
    return found


def infer_types(frame: pl.LazyFrame, columns: Sequence[ColumnRule]) -> list[Inferred]:
    """Each column's type from every value, in one streaming pass over `frame` (silver and
    dimensions both infer here)."""
    found = gather_evidence(frame, columns)
    return [column_type(c.target, e) for c, e in zip(columns, found, strict=True)]


def column_type(target: str, seen: Evidence) -> Inferred:
    """The first of INFERENCE_ORDER that every non-null value parses as, unless a value
    would not read back as its text in that type: then string, with a warning naming the
    value. A column with no value at all is string too."""
    if not seen.any:
        return Inferred(
            SilverType("string"), f"column {target!r} is null in every row; typed as string"
        )
    for name in INFERENCE_ORDER:
        if name not in seen.parses:
            continue
        if name not in seen.lost:
            return Inferred(SilverType(name))
        text, value = seen.lost[name]
        return Inferred(
            SilverType("string"),
            f"column {target!r} kept as text: {_shown(text)} would {what_is_lost(text, value)} "
            f"as {name}",
        )
    return Inferred(SilverType("string"))


def what_is_lost(text: str, value: str) -> str:
    """What reading `text` as `value` would change, in words."""
    if _LEADING_ZERO.match(text):
        return "lose its leading zero"
    if text.startswith("+"):
        return "lose its '+' sign"
    return f"become {value}"


def _shown(text: str) -> str:
    return repr(text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "...")
