"""The silver spec, validated field by field (SpecError naming the field's path).

parse_spec() checks what the spec says on its own, before anything is read;
resolve_columns() checks it against the bronze columns the manifest lists, still before
any data is read; check_types() checks bounds and values against the column types
(after inference when the spec lets silver infer them).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import replace

import polars as pl
from google.protobuf import struct_pb2

from flowforge.casting import parse_literal
from flowforge.errors import SpecError
from flowforge.fieldpath import FieldPath, dotted
from flowforge.specs.silver_model import (
    DEFAULT_MAX_BAD_PERCENT,
    DEFAULT_NULL_MARKERS,
    LOCALES,
    ColumnRule,
    Dedupe,
    Expectation,
    NumberFormat,
    SilverType,
    Spec,
)
from flowforge.v1 import silver_pb2

TYPES = ("string", "integer", "decimal(p,s)", "float", "boolean", "date", "timestamp")
RULES = ("not_null", "unique", "accepted_values", "range", "regex", "length")
ACTIONS = ("warn", "drop", "fail")
HISTORIES = ("", "scd2")
_SIMPLE_TYPES = ("string", "integer", "float", "boolean", "date", "timestamp")
_DECIMAL = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")
# Which rules apply to which types (accepted_values and not_null apply to all).
_RULE_TYPES = {
    "range": ("integer", "decimal", "float", "date", "timestamp"),
    "regex": ("string",),
    "length": ("string",),
}
# Fields each rule reads; any other rule field set is a mistake worth reporting.
_RULE_FIELDS = {
    "values": ("accepted_values",),
    "min": ("range",),
    "max": ("range",),
    "pattern": ("regex",),
    "min_length": ("length",),
    "max_length": ("length",),
}
MAX_NAME_CHARS = 255
_NUMERIC = ("integer", "float", "decimal")
# A thousands separator written as any of these matches all of them: spreadsheets export
# the no-break or narrow no-break space where a person types a plain one.
_SPACES = (" ", "\u00a0", "\u202f")


def snake_case(name: str) -> str:
    """`Customer ID` -> customer_id, `firstName` -> first_name, `Prénom` -> prénom."""
    text = unicodedata.normalize("NFC", name).strip()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^\w]+", "_", text.lower())
    return re.sub(r"_+", "_", text).strip("_")


def whole_value(pattern: str) -> str:
    """A regex rule's pattern as polars runs it: matched against the whole value. The
    spec compiles this same text, so a pattern it accepts is one silver can run."""
    return f"^(?:{pattern})$"


def parse_type(text: str, field: FieldPath) -> SilverType:
    name = text.strip().lower() or "string"
    if name in _SIMPLE_TYPES:
        return SilverType(name)
    match = _DECIMAL.fullmatch(name)
    if match:
        precision, scale = int(match[1]), int(match[2])
        if not 1 <= precision <= 38 or scale > precision:
            raise SpecError(
                field, f"{text!r}: decimal precision must be 1-38 and scale at most the precision"
            )
        return SilverType("decimal", precision, scale)
    raise SpecError(field, f"{_shown(text)} is not a type; use one of {', '.join(TYPES)}")


def parse_spec(message: silver_pb2.SilverSpec) -> Spec:
    columns = tuple(_column(c, ("columns", i)) for i, c in enumerate(message.columns))
    seen: dict[str, FieldPath] = {}
    for column in columns:
        if column.target in seen:
            first = dotted(("spec", *seen[column.target]))
            raise SpecError(
                (*column.field, "target"), f"{column.target!r} is already the target of {first}"
            )
        seen[column.target] = column.field
    expectations = tuple(
        _expectation(e, ("expectations", i)) for i, e in enumerate(message.expectations)
    )
    ids: dict[str, FieldPath] = {}
    for e in expectations:
        if e.id in ids:
            raise SpecError(
                (*e.field, "id"), f"{e.id!r} is also the id of {dotted(('spec', *ids[e.id]))}"
            )
        ids[e.id] = e.field
    spec = Spec(
        columns,
        expectations,
        _dedupe(message.dedupe),
        message.fail_on_schema_drift,
        _percent(message, ("max_bad_percent",), DEFAULT_MAX_BAD_PERCENT),
    )
    if spec.dedupe.history:
        for e in expectations:
            if e.type == "unique":
                # Every version of a key is a row: versions of one key share values.
                raise SpecError(
                    (*e.field, "type"),
                    "unique does not apply with spec.dedupe.history scd2 "
                    "(every version of a key is kept, so versions share values)",
                )
    if columns:
        check_references(spec, columns)
        check_types(spec, columns)
    return spec


def _column(message: silver_pb2.ColumnSpec, field: FieldPath) -> ColumnRule:
    if not message.source:
        raise SpecError((*field, "source"), "is required")
    target = message.target or snake_case(message.source)
    if not target:
        raise SpecError(
            (*field, "target"), f"is required: {_shown(message.source)} has no letters or digits"
        )
    _check_name(target, (*field, "target"))
    kind = parse_type(message.type, (*field, "type"))
    if message.formats and kind.name not in ("date", "timestamp"):
        raise SpecError((*field, "formats"), "applies to date and timestamp columns only")
    for i, fmt in enumerate(message.formats):
        check_format(fmt, (*field, "formats", i))
    case = message.case.strip().lower() or "none"
    if case not in ("lower", "upper", "none"):
        raise SpecError((*field, "case"), f"{_shown(message.case)} is not lower, upper or none")
    if case != "none" and kind.name != "string":
        raise SpecError((*field, "case"), f"applies to string columns only (type is {kind})")
    markers = tuple(message.null_markers)
    if not markers and not message.null_markers_set:
        markers = DEFAULT_NULL_MARKERS
    return ColumnRule(
        source=message.source,
        target=target,
        type=kind,
        formats=tuple(message.formats),
        trim=message.trim if message.HasField("trim") else True,
        case=case,
        null_markers=markers,
        required=message.required,
        field=field,
        number=_number_format(message, kind, field),
    )


def _number_format(
    message: silver_pb2.ColumnSpec, kind: SilverType, field: FieldPath
) -> NumberFormat:
    """The column's separators: from `locale`, or `decimal_separator` and
    `thousands_separator` (one character each, not a digit, letter or sign)."""
    given = [
        name
        for name in ("locale", "decimal_separator", "thousands_separator")
        if getattr(message, name)
    ]
    if not given:
        return NumberFormat()
    if kind.name not in _NUMERIC:
        raise SpecError(
            (*field, given[0]),
            f"applies to integer, float and decimal columns only (type is {kind})",
        )
    if message.locale:
        if len(given) > 1:
            raise SpecError(
                (*field, given[1]), "cannot be combined with locale, which sets both separators"
            )
        name = message.locale.strip().lower()
        if name not in LOCALES:
            raise SpecError(
                (*field, "locale"), f"{_shown(message.locale)} is not one of {', '.join(LOCALES)}"
            )
        return LOCALES[name]
    thousands = _separator(message.thousands_separator, (*field, "thousands_separator"))
    thousands = " " if thousands in _SPACES else thousands
    # Unset, the decimal separator is '.', unless '.' groups the thousands: then ','.
    default = "," if thousands == "." else "."
    decimal = _separator(message.decimal_separator, (*field, "decimal_separator")) or default
    if thousands == decimal:
        raise SpecError((*field, "thousands_separator"), f"{thousands!r} is also decimal_separator")
    return NumberFormat(decimal, thousands)


def _separator(text: str, field: FieldPath) -> str:
    if not text:
        return ""
    if len(text) != 1:
        raise SpecError(field, f"{_shown(text)} must be one character")
    if text.isalnum() or text in "+-" or not text.isprintable() and text not in _SPACES:
        raise SpecError(field, f"{text!r} cannot separate digits (a digit, letter or sign)")
    return text


def _percent(message: silver_pb2.SilverSpec, field: FieldPath, default: float) -> float:
    if not message.HasField("max_bad_percent"):
        return default
    value = message.max_bad_percent
    if not (math.isfinite(value) and 0 <= value <= 100):
        raise SpecError(field, "must be between 0 and 100")
    return value


def _check_name(name: str, field: FieldPath) -> None:
    if name.startswith("_"):
        raise SpecError(field, f"{_shown(name)}: names starting with '_' are reserved")
    if len(name) > MAX_NAME_CHARS or any(ord(ch) < 32 for ch in name):
        raise SpecError(field, f"{_shown(name)} is too long or holds control characters")


def _expectation(message: silver_pb2.Expectation, field: FieldPath) -> Expectation:
    rule = message.type.strip().lower()
    if rule not in RULES:
        raise SpecError(
            (*field, "type"), f"{_shown(message.type)} is not one of {', '.join(RULES)}"
        )
    if not message.column:
        raise SpecError((*field, "column"), "is required")
    action = message.action.strip().lower() or "warn"
    if action not in ACTIONS:
        raise SpecError((*field, "action"), f"{_shown(message.action)} is not warn, drop or fail")
    for name, rules in _RULE_FIELDS.items():
        given = (
            bool(getattr(message, name))
            if name in ("values", "pattern")
            else (message.HasField(name))
        )
        if given and rule not in rules:
            raise SpecError((*field, name), f"applies to {' and '.join(rules)} rules only")
    values = tuple(_value_text(v, (*field, "values", i)) for i, v in enumerate(message.values))
    low = _value_text(message.min, (*field, "min")) if message.HasField("min") else None
    high = _value_text(message.max, (*field, "max")) if message.HasField("max") else None
    min_length = message.min_length if message.HasField("min_length") else None
    max_length = message.max_length if message.HasField("max_length") else None
    if rule == "accepted_values" and not values:
        raise SpecError((*field, "values"), "is required for accepted_values")
    if rule == "range" and low is None and high is None:
        raise SpecError(field, ": range needs min, max or both")
    if rule == "regex":
        if not message.pattern:
            raise SpecError((*field, "pattern"), "is required for regex")
        check_pattern(message.pattern, (*field, "pattern"))
    if rule == "length":
        if min_length is None and max_length is None:
            raise SpecError(field, ": length needs min_length, max_length or both")
        if (min_length or 0) < 0 or (max_length is not None and max_length < 0):
            raise SpecError(field, ": min_length and max_length cannot be negative")
        if min_length is not None and max_length is not None and min_length > max_length:
            raise SpecError((*field, "min_length"), "is larger than max_length")
    bad = message.max_bad_percent if message.HasField("max_bad_percent") else None
    if bad is not None and not (math.isfinite(bad) and 0 <= bad <= 100):
        raise SpecError((*field, "max_bad_percent"), "must be between 0 and 100")
    rule_id = message.id or f"{rule}_{message.column}"
    if len(rule_id) > MAX_NAME_CHARS or any(ord(ch) < 32 for ch in rule_id):
        raise SpecError((*field, "id"), "is too long or holds control characters")
    return Expectation(
        id=rule_id,
        type=rule,
        column=message.column,
        action=action,
        values=values,
        min=low,
        max=high,
        pattern=message.pattern,
        min_length=min_length,
        max_length=max_length,
        max_bad_percent=bad,
        field=field,
    )


def _value_text(value: struct_pb2.Value, field: FieldPath) -> str:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "number_value" and math.isfinite(value.number_value):
        number = value.number_value
        return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)
    raise SpecError(field, "must be a number, text or a boolean")


def _dedupe(message: silver_pb2.Dedupe) -> Dedupe:
    keys = tuple(message.keys)
    for i, key in enumerate(keys):
        if not key:
            raise SpecError(("dedupe", "keys", i), "is empty")
        if key in keys[:i]:
            raise SpecError(("dedupe", "keys", i), f"{key!r} is listed twice")
    if message.sequence_by and not keys:
        raise SpecError(("dedupe", "sequence_by"), "needs spec.dedupe.keys")
    if message.tie_breaker and not message.sequence_by:
        raise SpecError(("dedupe", "tie_breaker"), "needs spec.dedupe.sequence_by")
    if message.tie_breaker and message.tie_breaker == message.sequence_by:
        raise SpecError(("dedupe", "tie_breaker"), "must differ from spec.dedupe.sequence_by")
    history = message.history.strip().lower()
    if history not in HISTORIES:
        raise SpecError(
            ("dedupe", "history"), f"{_shown(message.history)} is not scd2 (or empty: no history)"
        )
    if history and not (keys and message.sequence_by):
        raise SpecError(
            ("dedupe", "history"), "scd2 needs spec.dedupe.keys and spec.dedupe.sequence_by"
        )
    return Dedupe(keys, message.sequence_by, message.tie_breaker, history)


def resolve_columns(
    spec: Spec, bronze_columns: list[str], defaults: list[str]
) -> tuple[ColumnRule, ...]:
    """The columns silver writes: the spec's (checked against bronze) or every bronze
    column under its default target name (`defaults`), with its type still to infer."""
    if not spec.columns:
        columns = tuple(
            ColumnRule(source=s, target=t, type=None)
            for s, t in zip(bronze_columns, defaults, strict=True)
        )
        check_references(spec, columns)
        return columns
    known = set(bronze_columns)
    for column in spec.columns:
        if column.source not in known:
            listed = ", ".join(repr(c) for c in bronze_columns[:30])
            raise SpecError(
                (*column.field, "source"),
                f"{_shown(column.source)} is not a bronze column "
                f"(bronze has: {listed or 'no columns'})",
            )
    return spec.columns


def check_references(spec: Spec, columns: tuple[ColumnRule, ...]) -> None:
    targets = [c.target for c in columns]
    known = set(targets)
    implicit = {f"cast_{t}" for t in targets} | {f"required_{t}" for t in targets}

    def must_exist(name: str, field: FieldPath) -> None:
        if name not in known:
            raise SpecError(
                field,
                f"{_shown(name)} is not a silver column "
                f"(silver has: {', '.join(repr(t) for t in targets[:30])})",
            )

    for e in spec.expectations:
        must_exist(e.column, (*e.field, "column"))
        if e.id in implicit:
            raise SpecError((*e.field, "id"), f"{e.id!r} is the name of a built-in check")
    for i, key in enumerate(spec.dedupe.keys):
        must_exist(key, ("dedupe", "keys", i))
    if spec.dedupe.sequence_by:
        must_exist(spec.dedupe.sequence_by, ("dedupe", "sequence_by"))
    if spec.dedupe.tie_breaker:
        must_exist(spec.dedupe.tie_breaker, ("dedupe", "tie_breaker"))


def check_types(spec: Spec, columns: tuple[ColumnRule, ...]) -> None:
    """Rules fit their column's type, and their values and bounds are values of it."""
    kinds = {c.target: c.type or SilverType("string") for c in columns}
    for e in spec.expectations:
        kind = kinds[e.column]
        allowed = _RULE_TYPES.get(e.type)
        if allowed and kind.name not in allowed:
            raise SpecError(
                e.field,
                f": {e.type} does not apply to {e.column!r} of type {kind} "
                f"(it applies to {', '.join(allowed)})",
            )
        texts: list[tuple[FieldPath, str]] = [
            ((*e.field, "values", i), v) for i, v in enumerate(e.values)
        ]
        texts += [((*e.field, n), v) for n, v in (("min", e.min), ("max", e.max)) if v is not None]
        parsed = {}
        for field, text in texts:
            parsed[field] = parse_literal(text, kind)
            if parsed[field] is None:
                raise SpecError(field, f"{_shown(text)} is not a {kind} value")
        low, high = parsed.get((*e.field, "min")), parsed.get((*e.field, "max"))
        if low is not None and high is not None and low > high:
            raise SpecError((*e.field, "min"), f"{e.min!r} is larger than max {e.max!r}")


# strftime directives polars (chrono) reads; it ignores unknown ones silently, so we check.
_DIRECTIVE = re.compile(
    r"%(?:[-_0]?[YCymbBhdeaAwuUWGgVjDxFvHkIlPpMSRTXrZstn%]|\.?[369]?f|:{1,3}z|#z|z)"
)


def check_format(fmt: str, field: FieldPath) -> None:
    if "%" not in fmt:
        raise SpecError(field, f"{_shown(fmt)} has no % directive (e.g. %Y-%m-%d)")
    rest = _DIRECTIVE.sub("", fmt)
    if "%" in rest:
        bad = rest[rest.index("%") : rest.index("%") + 2]
        raise SpecError(field, f"{_shown(fmt)}: {bad!r} is not a strftime directive")
    try:
        pl.select(pl.lit("").str.strptime(pl.Datetime("us"), fmt, strict=False))
    except pl.exceptions.PolarsError as exc:
        raise SpecError(field, f"{_shown(fmt)} is not a format: {_first_line(exc)}") from None


def check_pattern(pattern: str, field: FieldPath) -> None:
    """Compiles the pattern with polars, the engine that runs the rule (Rust regex syntax:
    no lookaround, no backreferences, which Python's re would accept).

    The pattern alone first: `a)|(b` is unbalanced, yet its whole-value form compiles as
    `^(?:a)|(b)$`, which matches "xb". Then the whole-value form itself, which is what
    runs: e.g. a `(?x)` comment would swallow its closing `)$`."""
    for text, problem in (
        (pattern, "is not a valid regular expression"),
        (whole_value(pattern), "cannot be matched against the whole value"),
    ):
        try:
            pl.select(pl.lit("").str.contains(text))
        except pl.exceptions.PolarsError as exc:
            raise SpecError(field, f"{_shown(pattern)} {problem}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if line.startswith("error:")), lines[0] if lines else "")
    return detail[:200]


def with_types(columns: tuple[ColumnRule, ...], kinds: list[SilverType]) -> tuple[ColumnRule, ...]:
    return tuple(replace(c, type=k) for c, k in zip(columns, kinds, strict=True))


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
