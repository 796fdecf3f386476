"""Spec validation: every mistake is INVALID_ARGUMENT naming the field, before data is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format

from flowforge.errors import InvalidArgument
from flowforge.specs.silver import parse_spec, resolve_columns
from flowforge.specs.silver_model import SilverType
from flowforge.v1 import silver_pb2

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "silver" / "customers.yaml"


def spec_of(data: dict[str, Any]) -> silver_pb2.SilverSpec:
    return json_format.ParseDict(data, silver_pb2.SilverSpec())


def test_example_customers_yaml_parses_into_a_spec() -> None:
    spec = parse_spec(spec_of(yaml.safe_load(EXAMPLE.read_text())))
    by_target = {c.target: c for c in spec.columns}
    assert by_target["lifetime_value"].type == SilverType("decimal", 12, 2)
    assert by_target["signup_date"].formats == ("%Y-%m-%d", "%d/%m/%Y")
    assert by_target["email"].case == "lower" and by_target["email"].trim
    assert by_target["customer_id"].required
    assert by_target["first_name"].null_markers == ("", "NULL", "N/A", "null")
    rules = {e.id: e for e in spec.expectations}
    assert rules["range_lifetime_value"].min == "0"  # `min: 0` in YAML, a number
    assert rules["accepted_values_status"].action == "warn"
    assert spec.dedupe.keys == ("customer_id",) and spec.dedupe.sequence_by == "updated_at"


def test_defaults_and_explicit_empty_null_markers() -> None:
    spec = parse_spec(
        spec_of(
            {"columns": [{"source": "Sign-up Date"}, {"source": "x", "null_markers_set": True}]}
        )
    )
    assert spec.columns[0].target == "sign_up_date" and spec.columns[0].type == SilverType("string")
    assert spec.columns[1].null_markers == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"columns": [{"type": "integer"}]}, "spec.columns[0].source is required"),
        ({"columns": [{"source": "a", "type": "int128"}]}, "spec.columns[0].type 'int128'"),
        ({"columns": [{"source": "a", "type": "decimal(40,2)"}]}, "spec.columns[0].type"),
        ({"columns": [{"source": "a", "type": "decimal(4,5)"}]}, "spec.columns[0].type"),
        (
            {"columns": [{"source": "a"}, {"source": "b", "type": "date", "formats": ["%Q"]}]},
            "spec.columns[1].formats[0]",
        ),
        ({"columns": [{"source": "a", "formats": ["%Y"]}]}, "spec.columns[0].formats applies"),
        ({"columns": [{"source": "a", "type": "date", "formats": ["daily"]}]}, "formats[0]"),
        ({"columns": [{"source": "a", "case": "title"}]}, "spec.columns[0].case"),
        ({"columns": [{"source": "a", "type": "integer", "case": "lower"}]}, "columns[0].case"),
        ({"columns": [{"source": "a", "target": "_row_hash"}]}, "spec.columns[0].target"),
        ({"columns": [{"source": "a"}, {"source": "A"}]}, "spec.columns[1].target 'a'"),
        ({"columns": [{"source": "%%%"}]}, "spec.columns[0].target is required"),
        (
            {"columns": [{"source": "a"}], "expectations": [{"type": "exists", "column": "a"}]},
            "spec.expectations[0].type",
        ),
        (
            {"columns": [{"source": "a"}], "expectations": [{"type": "not_null", "column": "b"}]},
            "spec.expectations[0].column 'b' is not a silver column",
        ),
        (
            {
                "columns": [{"source": "a"}],
                "expectations": [{"type": "not_null", "column": "a", "action": "explode"}],
            },
            "spec.expectations[0].action",
        ),
        (
            {"columns": [{"source": "a"}], "expectations": [{"type": "regex", "column": "a"}]},
            "spec.expectations[0].pattern is required",
        ),
        (
            {
                "columns": [{"source": "a"}],
                "expectations": [{"type": "regex", "column": "a", "pattern": "(unclosed"}],
            },
            "spec.expectations[0].pattern '(unclosed' is not a valid regular expression",
        ),
        (
            {
                "columns": [{"source": "a"}],
                "expectations": [{"type": "regex", "column": "a", "pattern": "(?=x)"}],
            },
            "spec.expectations[0].pattern",
        ),
        (
            {"columns": [{"source": "a"}], "expectations": [{"type": "range", "column": "a"}]},
            "spec.expectations[0]: range needs min, max or both",
        ),
        (
            {
                "columns": [{"source": "a"}],
                "expectations": [{"type": "range", "column": "a", "min": 1}],
            },
            "range does not apply to 'a' of type string",
        ),
        (
            {
                "columns": [{"source": "a", "type": "integer"}],
                "expectations": [{"type": "range", "column": "a", "min": "one"}],
            },
            "spec.expectations[0].min 'one' is not a integer value",
        ),
        (
            {
                "columns": [{"source": "a", "type": "date"}],
                "expectations": [
                    {"type": "range", "column": "a", "min": "2025-01-01", "max": "2024-01-01"}
                ],
            },
            "spec.expectations[0].min '2025-01-01' is larger than max",
        ),
        (
            {
                "columns": [{"source": "a", "type": "integer"}],
                "expectations": [{"type": "accepted_values", "column": "a", "values": [1, "x"]}],
            },
            "spec.expectations[0].values[1] 'x'",
        ),
        (
            {
                "columns": [{"source": "a"}],
                "expectations": [{"type": "not_null", "column": "a", "pattern": "x"}],
            },
            "spec.expectations[0].pattern applies to regex rules only",
        ),
        (
            {
                "columns": [{"source": "a"}],
                "expectations": [
                    {"type": "length", "column": "a", "min_length": 5, "max_length": 2}
                ],
            },
            "spec.expectations[0].min_length",
        ),
        (
            {
                "columns": [{"source": "a"}],
                "expectations": [{"type": "not_null", "column": "a", "max_bad_percent": 101}],
            },
            "spec.expectations[0].max_bad_percent",
        ),
        (
            {
                "columns": [{"source": "a"}],
                "expectations": [
                    {"type": "not_null", "column": "a"},
                    {"type": "not_null", "column": "a"},
                ],
            },
            "spec.expectations[1].id 'not_null_a'",
        ),
        ({"dedupe": {"sequence_by": "a"}}, "spec.dedupe.sequence_by needs spec.dedupe.keys"),
        (
            {"dedupe": {"keys": ["a"], "tie_breaker": "b"}},
            "spec.dedupe.tie_breaker needs spec.dedupe.sequence_by",
        ),
        (
            {"columns": [{"source": "a"}], "dedupe": {"keys": ["a", "b"]}},
            "spec.dedupe.keys[1] 'b' is not a silver column",
        ),
        (
            {"dedupe": {"keys": ["a"], "sequence_by": "b", "history": "scd3"}},
            "spec.dedupe.history 'scd3' is not scd2",
        ),
        (
            {"dedupe": {"keys": ["a"], "history": "scd2"}},
            "spec.dedupe.history scd2 needs spec.dedupe.keys and spec.dedupe.sequence_by",
        ),
        (
            {
                "columns": [{"source": "a"}, {"source": "b"}],
                "expectations": [{"type": "unique", "column": "a"}],
                "dedupe": {"keys": ["a"], "sequence_by": "b", "history": "scd2"},
            },
            "spec.expectations[0].type unique does not apply with spec.dedupe.history scd2",
        ),
    ],
)
def test_bad_specs_name_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_spec(spec_of(data))
    assert message in info.value.message


def test_history_scd2_is_read_case_insensitively() -> None:
    data = {"dedupe": {"keys": ["a"], "sequence_by": "b", "history": " SCD2 "}}
    assert parse_spec(spec_of(data)).dedupe.history == "scd2"
    assert parse_spec(spec_of({"dedupe": {"keys": ["a"]}})).dedupe.history == ""


def regex_spec(pattern: str) -> silver_pb2.SilverSpec:
    return spec_of(
        {
            "columns": [{"source": "a"}],
            "expectations": [{"type": "regex", "column": "a", "pattern": pattern}],
        }
    )


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        # Unbalanced, yet `^(?:a)|(b)$` compiles and would match "xb": the pattern alone is
        # compiled first.
        ("a)|(b", "'a)|(b' is not a valid regular expression: error: unopened group"),
        ("abc)", "'abc)' is not a valid regular expression"),
        # Python's re accepts these; polars (Rust regex), which runs the rule, does not.
        ("(?=a)", "'(?=a)' is not a valid regular expression: error: look-around"),
        ("(?<=a)b", "is not a valid regular expression: error: look-around"),
        (r"(a)\1", "is not a valid regular expression: error: backreferences"),
        # Valid alone, but the comment swallows the `)$` of the whole-value form.
        ("(?x) a # note", "'(?x) a # note' cannot be matched against the whole value"),
    ],
)
def test_patterns_polars_cannot_run_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_spec(regex_spec(pattern))
    assert info.value.message.startswith("spec.expectations[0].pattern ")
    assert message in info.value.message


@pytest.mark.parametrize("pattern", [r"\p{L}+", "a|b", "(?i)[a-z]{2}", "(?x) a # note\n"])
def test_patterns_polars_runs_are_accepted(pattern: str) -> None:
    """`\\p{L}` is Rust syntax Python's re refuses: the engine that runs it decides."""
    assert parse_spec(regex_spec(pattern)).expectations[0].pattern == pattern


def test_columns_are_checked_against_bronze() -> None:
    spec = parse_spec(spec_of({"columns": [{"source": "id"}, {"source": "Email"}]}))
    with pytest.raises(InvalidArgument) as info:
        resolve_columns(spec, ["id", "email"], ["id", "email"])
    assert "spec.columns[1].source 'Email' is not a bronze column" in info.value.message
    assert "'email'" in info.value.message


def test_without_columns_rules_name_default_targets() -> None:
    spec = parse_spec(spec_of({"expectations": [{"type": "not_null", "column": "Customer ID"}]}))
    with pytest.raises(InvalidArgument) as info:
        resolve_columns(spec, ["Customer ID"], ["customer_id"])
    assert "spec.expectations[0].column 'Customer ID' is not a silver column" in info.value.message
    assert "'customer_id'" in info.value.message
