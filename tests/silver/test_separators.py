"""Decimal commas and thousands separators: `decimal_separator`, `thousands_separator` and
the `locale` shortcut, from the spec (and a workflow's YAML) to the cast and the quarantine."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from google.protobuf import json_format

from flowforge import casting
from flowforge.errors import InvalidArgument
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.specs.silver import parse_spec, parse_type
from flowforge.specs.silver_model import LOCALES, NumberFormat
from flowforge.storage import ObjectStore
from flowforge.v1 import silver_pb2
from orchestrator.workflows import parse_workflow
from services.bronze.options import CsvOptions
from tests.silver.conftest import fill_bronze, read_quarantine, read_silver, refine

DE = NumberFormat(",", ".")
SPACES = (" ", "\u00a0", "\u202f")  # plain, no-break, narrow no-break


def parse(values: list[str], kind: str, number: NumberFormat) -> list[Any]:
    """The cast silver runs on one text column."""
    frame = casting.parse_in_order(
        pl.LazyFrame({"v": values}, schema={"v": pl.String}),
        [("v", "out", casting.parsers(parse_type(kind, ()), (), number))],
    )
    return frame.collect().get_column("out").to_list()


def plain(text: str, number: NumberFormat) -> str:
    """The oracle's reading: drop the thousands separators, make the decimal one '.'."""
    for space in SPACES if number.thousands == " " else (number.thousands,):
        if space:
            text = text.replace(space, "")
    return text.replace(number.decimal, ".")


def test_german_numbers_as_float_and_decimal() -> None:
    values = ["1.234,56", "-1.234.567,5", "0,5", "12", "1234,56", "+7,25"]
    assert parse(values, "float", DE) == [float(plain(v, DE)) for v in values]
    cents = Decimal("0.01")
    assert parse(values, "decimal(10,2)", DE) == [
        Decimal(plain(v, DE)).quantize(cents) for v in values
    ]


@pytest.mark.parametrize("space", SPACES)
def test_french_numbers_group_with_any_space(space: str) -> None:
    values = [f"1{space}234,56", f"12{space}345{space}678,9", "3,5"]
    fr = LOCALES["fr"]
    assert parse(values, "float", fr) == [float(plain(v, fr)) for v in values]
    assert parse(values, "decimal(12,2)", fr) == [
        Decimal(plain(v, fr)).quantize(Decimal("0.01")) for v in values
    ]


def test_integers_with_a_thousands_dot_and_english_numbers() -> None:
    dots = NumberFormat(",", ".")
    values = ["12.345", "1.000.000", "7", "-3.210"]
    assert parse(values, "integer", dots) == [int(plain(v, dots)) for v in values]
    en = LOCALES["en"]
    english = ["1,234,567.5", "0.25", "12,345"]
    assert parse(english, "float", en) == [float(plain(v, en)) for v in english]


@pytest.mark.parametrize(
    ("kind", "number", "values"),
    [
        # Two decimal commas; a dot that groups 2 or 4 digits; a comma after the decimal one.
        ("float", DE, ["1,2,3", "1.23.4", "12.34", "1.2345", "1.234,5,6", "1.234.5"]),
        ("decimal(10,2)", DE, ["1,2,3", "1.23.4", "1.234,56.7"]),
        # With a decimal comma and no thousands separator a dot is no separator at all.
        ("float", NumberFormat(",", ""), ["1.5", "1.234,5"]),
        ("integer", NumberFormat(",", "."), ["12.34", "1.234,5", "1,0"]),
        ("float", LOCALES["fr"], ["1 23,5", "1\u00a02345", "1.5"]),
        ("float", LOCALES["en"], ["1,23", "1.234,5", "12,34,567"]),
    ],
)
def test_misplaced_separators_are_not_numbers(
    kind: str, number: NumberFormat, values: list[str]
) -> None:
    assert parse(values, kind, number) == [None] * len(values)


def spec_of(column: dict[str, Any], **fields: Any) -> silver_pb2.SilverSpec:
    return json_format.ParseDict({"columns": [column], **fields}, silver_pb2.SilverSpec())


@pytest.mark.parametrize(
    ("column", "number"),
    [
        ({"type": "float", "locale": "de"}, DE),
        ({"type": "decimal(10,2)", "locale": " FR "}, NumberFormat(",", " ")),
        ({"type": "integer", "thousands_separator": "."}, NumberFormat(",", ".")),
        ({"type": "float", "thousands_separator": ","}, NumberFormat(".", ",")),
        (
            {"type": "float", "thousands_separator": "\u202f", "decimal_separator": ","},
            LOCALES["fr"],
        ),
        ({"type": "float", "thousands_separator": "'"}, NumberFormat(".", "'")),
        ({"type": "float", "decimal_separator": ","}, NumberFormat(",", "")),
        ({"type": "float"}, NumberFormat(".", "")),
    ],
)
def test_separators_in_the_spec(column: dict[str, Any], number: NumberFormat) -> None:
    assert parse_spec(spec_of({"source": "a", **column})).columns[0].number == number


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (
            {"locale": "de"},
            "spec.columns[0].locale applies to integer, float and decimal columns only "
            "(type is string)",
        ),
        ({"type": "date", "decimal_separator": ","}, "spec.columns[0].decimal_separator applies"),
        ({"type": "boolean", "thousands_separator": "."}, "spec.columns[0].thousands_separator"),
        ({"type": "float", "locale": "xx"}, "spec.columns[0].locale 'xx' is not one of en, de, fr"),
        (
            {"type": "float", "locale": "de", "thousands_separator": "."},
            "spec.columns[0].thousands_separator cannot be combined with locale",
        ),
        ({"type": "float", "decimal_separator": ",,"}, "decimal_separator ',,' must be one"),
        ({"type": "float", "decimal_separator": "5"}, "decimal_separator '5' cannot separate"),
        ({"type": "float", "thousands_separator": "e"}, "thousands_separator 'e' cannot"),
        ({"type": "float", "thousands_separator": "-"}, "thousands_separator '-' cannot"),
        ({"type": "float", "thousands_separator": "\t"}, "thousands_separator '\\t' cannot"),
        (
            {"type": "float", "decimal_separator": ",", "thousands_separator": ","},
            "spec.columns[0].thousands_separator ',' is also decimal_separator",
        ),
        (
            {"type": "integer", "decimal_separator": ".", "thousands_separator": "."},
            "spec.columns[0].thousands_separator '.' is also decimal_separator",
        ),
    ],
)
def test_bad_separators_name_the_field(column: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_spec(spec_of({"source": "a", **column}))
    assert message in info.value.message


WORKFLOW = """\
id: wf
name: Meter readings
jobs:
  - id: readings
    csv: {delimiter: ";"}
    silver:
      max_bad_percent: 5
      columns:
        - {source: day, type: date}
        - {source: kwh, type: "decimal(10,2)", locale: de}
        - {source: total, type: integer, thousands_separator: "."}
        - {source: price, type: float, decimal_separator: ",", thousands_separator: " "}
"""


def test_a_workflow_yaml_takes_the_new_fields() -> None:
    spec = parse_spec(parse_workflow(WORKFLOW, "wf.yaml").jobs[0].silver_spec())
    assert spec.max_bad_percent == 5
    assert [c.number for c in spec.columns] == [
        NumberFormat(),
        DE,
        NumberFormat(",", "."),
        NumberFormat(",", " "),
    ]


def test_a_workflow_yaml_error_names_the_line() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_workflow(WORKFLOW.replace("locale: de", "locale: pt"), "wf.yaml")
    assert info.value.message.startswith("wf.yaml:10: jobs[0].silver.columns[1].locale 'pt'")


def test_european_numbers_through_bronze_and_silver(
    silver, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    rows = [
        ["reading", "kwh", "total", "price"],
        ["r1", "1.234,56", "12.345", "1\u00a0234,5"],
        ["r2", "0,07", "7", "3,25"],
        ["r3", "1,2,3", "1.000.000", "2\u202f000"],  # kwh has two decimal commas
        ["r4", "12,5", "1.23.4", "0,5"],  # total's dots do not group by three
    ]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\n").writerows(rows)
    fill_bronze(store, settings, job, buffer.getvalue().encode(), options=CsvOptions.validated(";"))
    spec = {
        "columns": [
            {"source": "reading"},
            {"source": "kwh", "type": "decimal(10,2)", "locale": "de"},
            {"source": "total", "type": "integer", "thousands_separator": "."},
            {"source": "price", "type": "float", "locale": "fr"},
        ]
    }
    result = refine(silver, job, spec)
    assert dict(result.rejected_by_reason) == {"cast_kwh": 1, "cast_total": 1}
    kept = read_silver(settings, job).sort("reading")
    good = [r for r in rows[1:] if r[0] in ("r1", "r2")]
    assert kept["kwh"].to_list() == [Decimal(plain(r[1], DE)) for r in good]
    assert kept["total"].to_list() == [int(r[2].replace(".", "")) for r in good]
    assert kept["price"].to_list() == [float(plain(r[3], LOCALES["fr"])) for r in good]
    quarantine = read_quarantine(settings, job).sort("reading")
    assert quarantine["_rule_id"].to_list() == ["cast_kwh", "cast_total"]
    assert quarantine["_reason"].to_list() == [
        "'1,2,3' is not a valid decimal(10,2) (decimal ',', thousands '.')",
        "'1.23.4' is not a valid integer (decimal ',', thousands '.')",
    ]
