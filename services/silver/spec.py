"""The silver spec, validated field by field (INVALID_ARGUMENT naming the field).

parse_spec() checks what the spec says on its own, before anything is read;
resolve_columns() checks it against the bronze columns the manifest lists, still before
any data is read; check_types() checks bounds and values against the column types
(after inference when the spec lets silver infer them).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import polars as pl
from google.protobuf import struct_pb2

from flowforge.errors import InvalidArgument
from flowforge.v1 import silver_pb2
from services.silver.casting import parse_literal
from services.silver.model import (
    DEFAULT_NULL_MARKERS,
    ColumnRule,
    Dedupe,
    Expectation,
    SilverType,
    Spec,
)
from services.silver.transform import snake_case, whole_value

TYPES = ("string", "integer", "decimal(p,s)", "float", "boolean", "date", "timestamp")
RULES = ("not_null", "unique", "accepted_values", "range", "regex", "length")
ACTIONS = ("warn", "drop", "fail")
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


def parse_type(text: str, field: str) -> SilverType:
    name = text.strip().lower() or "string"
    if name in _SIMPLE_TYPES:
        return SilverType(name)
    match = _DECIMAL.fullmatch(name)
    if match:
        precision, scale = int(match[1]), int(match[2])
        if not 1 <= precision <= 38 or scale > precision:
            raise InvalidArgument(
                f"{field} {text!r}: decimal precision must be 1-38 and scale at most the precision"
            )
        return SilverType("decimal", precision, scale)
    raise InvalidArgument(f"{field} {_shown(text)} is not a type; use one of {', '.join(TYPES)}")


def parse_spec(message: silver_pb2.SilverSpec) -> Spec:
    columns = tuple(_column(c, f"spec.columns[{i}]") for i, c in enumerate(message.columns))
    seen: dict[str, str] = {}
    for column in columns:
        if column.target in seen:
            raise InvalidArgument(
                f"{column.field}.target {column.target!r} is already the target of "
                f"{seen[column.target]}"
            )
        seen[column.target] = column.field
    expectations = tuple(
        _expectation(e, f"spec.expectations[{i}]") for i, e in enumerate(message.expectations)
    )
    ids: dict[str, str] = {}
    for e in expectations:
        if e.id in ids:
            raise InvalidArgument(f"{e.field}.id {e.id!r} is also the id of {ids[e.id]}")
        ids[e.id] = e.field
    spec = Spec(columns, expectations, _dedupe(message.dedupe), message.fail_on_schema_drift)
    if columns:
        check_references(spec, columns)
        check_types(spec, columns)
    return spec


def _column(message: silver_pb2.ColumnSpec, field: str) -> ColumnRule:
    if not message.source:
        raise InvalidArgument(f"{field}.source is required")
    target = message.target or snake_case(message.source)
    if not target:
        raise InvalidArgument(
            f"{field}.target is required: {_shown(message.source)} has no letters or digits"
        )
    _check_name(target, f"{field}.target")
    kind = parse_type(message.type, f"{field}.type")
    if message.formats and kind.name not in ("date", "timestamp"):
        raise InvalidArgument(f"{field}.formats applies to date and timestamp columns only")
    for i, fmt in enumerate(message.formats):
        check_format(fmt, f"{field}.formats[{i}]")
    case = message.case.strip().lower() or "none"
    if case not in ("lower", "upper", "none"):
        raise InvalidArgument(f"{field}.case {_shown(message.case)} is not lower, upper or none")
    if case != "none" and kind.name != "string":
        raise InvalidArgument(f"{field}.case applies to string columns only (type is {kind})")
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
    )


def _check_name(name: str, field: str) -> None:
    if name.startswith("_"):
        raise InvalidArgument(f"{field} {_shown(name)}: names starting with '_' are reserved")
    if len(name) > MAX_NAME_CHARS or any(ord(ch) < 32 for ch in name):
        raise InvalidArgument(f"{field} {_shown(name)} is too long or holds control characters")


def _expectation(message: silver_pb2.Expectation, field: str) -> Expectation:
    rule = message.type.strip().lower()
    if rule not in RULES:
        raise InvalidArgument(
            f"{field}.type {_shown(message.type)} is not one of {', '.join(RULES)}"
        )
    if not message.column:
        raise InvalidArgument(f"{field}.column is required")
    action = message.action.strip().lower() or "warn"
    if action not in ACTIONS:
        raise InvalidArgument(f"{field}.action {_shown(message.action)} is not warn, drop or fail")
    for name, rules in _RULE_FIELDS.items():
        given = (
            bool(getattr(message, name))
            if name in ("values", "pattern")
            else (message.HasField(name))
        )
        if given and rule not in rules:
            raise InvalidArgument(f"{field}.{name} applies to {' and '.join(rules)} rules only")
    values = tuple(_value_text(v, f"{field}.values[{i}]") for i, v in enumerate(message.values))
    low = _value_text(message.min, f"{field}.min") if message.HasField("min") else None
    high = _value_text(message.max, f"{field}.max") if message.HasField("max") else None
    min_length = message.min_length if message.HasField("min_length") else None
    max_length = message.max_length if message.HasField("max_length") else None
    if rule == "accepted_values" and not values:
        raise InvalidArgument(f"{field}.values is required for accepted_values")
    if rule == "range" and low is None and high is None:
        raise InvalidArgument(f"{field}: range needs min, max or both")
    if rule == "regex":
        if not message.pattern:
            raise InvalidArgument(f"{field}.pattern is required for regex")
        check_pattern(message.pattern, f"{field}.pattern")
    if rule == "length":
        if min_length is None and max_length is None:
            raise InvalidArgument(f"{field}: length needs min_length, max_length or both")
        if (min_length or 0) < 0 or (max_length is not None and max_length < 0):
            raise InvalidArgument(f"{field}: min_length and max_length cannot be negative")
        if min_length is not None and max_length is not None and min_length > max_length:
            raise InvalidArgument(f"{field}.min_length is larger than {field}.max_length")
    bad = message.max_bad_percent if message.HasField("max_bad_percent") else None
    if bad is not None and not (math.isfinite(bad) and 0 <= bad <= 100):
        raise InvalidArgument(f"{field}.max_bad_percent must be between 0 and 100")
    rule_id = message.id or f"{rule}_{message.column}"
    if len(rule_id) > MAX_NAME_CHARS or any(ord(ch) < 32 for ch in rule_id):
        raise InvalidArgument(f"{field}.id is too long or holds control characters")
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


def _value_text(value: struct_pb2.Value, field: str) -> str:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "number_value" and math.isfinite(value.number_value):
        number = value.number_value
        return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)
    raise InvalidArgument(f"{field} must be a number, text or a boolean")


def _dedupe(message: silver_pb2.Dedupe) -> Dedupe:
    keys = tuple(message.keys)
    for i, key in enumerate(keys):
        if not key:
            raise InvalidArgument(f"spec.dedupe.keys[{i}] is empty")
        if key in keys[:i]:
            raise InvalidArgument(f"spec.dedupe.keys[{i}] {key!r} is listed twice")
    if message.sequence_by and not keys:
        raise InvalidArgument("spec.dedupe.sequence_by needs spec.dedupe.keys")
    if message.tie_breaker and not message.sequence_by:
        raise InvalidArgument("spec.dedupe.tie_breaker needs spec.dedupe.sequence_by")
    if message.tie_breaker and message.tie_breaker == message.sequence_by:
        raise InvalidArgument("spec.dedupe.tie_breaker must differ from spec.dedupe.sequence_by")
    return Dedupe(keys, message.sequence_by, message.tie_breaker)


def resolve_columns(
    spec: Spec, bronze_columns: list[str], defaults: list[str]
) -> tuple[ColumnRule, ...]:
    """The columns silver writes: the spec's (checked against bronze) or every bronze
    column under its default target name (`defaults`), with its type still to infer."""
    if not spec.columns:
        columns = tuple(
            ColumnRule(source=s, target=t, type=None, field=f"bronze column {s!r}")
            for s, t in zip(bronze_columns, defaults, strict=True)
        )
        check_references(spec, columns)
        return columns
    known = set(bronze_columns)
    for column in spec.columns:
        if column.source not in known:
            listed = ", ".join(repr(c) for c in bronze_columns[:30])
            raise InvalidArgument(
                f"{column.field}.source {_shown(column.source)} is not a bronze column "
                f"(bronze has: {listed or 'no columns'})"
            )
    return spec.columns


def check_references(spec: Spec, columns: tuple[ColumnRule, ...]) -> None:
    targets = [c.target for c in columns]
    known = set(targets)
    implicit = {f"cast_{t}" for t in targets} | {f"required_{t}" for t in targets}

    def must_exist(name: str, field: str) -> None:
        if name not in known:
            raise InvalidArgument(
                f"{field} {_shown(name)} is not a silver column "
                f"(silver has: {', '.join(repr(t) for t in targets[:30])})"
            )

    for e in spec.expectations:
        must_exist(e.column, f"{e.field}.column")
        if e.id in implicit:
            raise InvalidArgument(f"{e.field}.id {e.id!r} is the name of a built-in check")
    for i, key in enumerate(spec.dedupe.keys):
        must_exist(key, f"spec.dedupe.keys[{i}]")
    if spec.dedupe.sequence_by:
        must_exist(spec.dedupe.sequence_by, "spec.dedupe.sequence_by")
    if spec.dedupe.tie_breaker:
        must_exist(spec.dedupe.tie_breaker, "spec.dedupe.tie_breaker")


def check_types(spec: Spec, columns: tuple[ColumnRule, ...]) -> None:
    """Rules fit their column's type, and their values and bounds are values of it."""
    kinds = {c.target: c.type or SilverType("string") for c in columns}
    for e in spec.expectations:
        kind = kinds[e.column]
        allowed = _RULE_TYPES.get(e.type)
        if allowed and kind.name not in allowed:
            raise InvalidArgument(
                f"{e.field}: {e.type} does not apply to {e.column!r} of type {kind} "
                f"(it applies to {', '.join(allowed)})"
            )
        texts = [(f"{e.field}.values[{i}]", v) for i, v in enumerate(e.values)]
        texts += [
            (f"{e.field}.{n}", v) for n, v in (("min", e.min), ("max", e.max)) if v is not None
        ]
        parsed = {}
        for field, text in texts:
            parsed[field] = parse_literal(text, kind)
            if parsed[field] is None:
                raise InvalidArgument(f"{field} {_shown(text)} is not a {kind} value")
        low, high = parsed.get(f"{e.field}.min"), parsed.get(f"{e.field}.max")
        if low is not None and high is not None and low > high:
            raise InvalidArgument(f"{e.field}.min {e.min!r} is larger than max {e.max!r}")


# strftime directives polars (chrono) reads; it ignores unknown ones silently, so we check.
_DIRECTIVE = re.compile(
    r"%(?:[-_0]?[YCymbBhdeaAwuUWGgVjDxFvHkIlPpMSRTXrZstn%]|\.?[369]?f|:{1,3}z|#z|z)"
)


def check_format(fmt: str, field: str) -> None:
    if "%" not in fmt:
        raise InvalidArgument(f"{field} {_shown(fmt)} has no % directive (e.g. %Y-%m-%d)")
    rest = _DIRECTIVE.sub("", fmt)
    if "%" in rest:
        bad = rest[rest.index("%") : rest.index("%") + 2]
        raise InvalidArgument(f"{field} {_shown(fmt)}: {bad!r} is not a strftime directive")
    try:
        pl.select(pl.lit("").str.strptime(pl.Datetime("us"), fmt, strict=False))
    except pl.exceptions.PolarsError as exc:
        raise InvalidArgument(
            f"{field} {_shown(fmt)} is not a format: {_first_line(exc)}"
        ) from None


def check_pattern(pattern: str, field: str) -> None:
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
            raise InvalidArgument(
                f"{field} {_shown(pattern)} {problem}: {_first_line(exc)}"
            ) from None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if line.startswith("error:")), lines[0] if lines else "")
    return detail[:200]


def with_types(columns: tuple[ColumnRule, ...], kinds: list[SilverType]) -> tuple[ColumnRule, ...]:
    return tuple(replace(c, type=k) for c, k in zip(columns, kinds, strict=True))


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
