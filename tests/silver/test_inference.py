"""Inference keeps every value's text: a number that would not read back as written (a zip
code, a phone number, an ISBN, a product code) keeps its column as text, with a warning."""

from __future__ import annotations

import csv
import io
import math
import re
from decimal import Decimal

import polars as pl
import pytest

from flowforge import casting
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.specs.silver_model import ColumnRule
from flowforge.storage import ObjectStore
from tests.silver.conftest import fill_bronze, read_silver, refine

INT64 = range(-(2**63), 2**63)
# The documented float notation: what a value must look like before its digits are compared.
PLAIN = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")

CASES = {
    "zip": ["00501", "01001", "10001", "99950"],
    "phone": ["+1 555 0100", "+44 20 7946 0958"],
    "phone_digits": ["4930123456", "0049301234"],
    "phone_e164": ["+15550100", "+442079460958"],
    "isbn_10": ["0306406152", "0345391802"],
    "isbn_13": ["978-3-16-148410-0", "9783161484100"],
    "product": ["007", "0042A"],
    "product_digits": ["100", "007", "042"],
    "signed": ["-1", "+1", "2"],
    "exponent": ["2.5", "1e3"],
    "hexadecimal": ["0x10", "0x1F"],
    "negative_zero": ["5", "-0"],
    "more_digits_than_a_float": ["1", "12345678901234567890"],
    "bare_point": ["1.25", ".5"],
    "integers": ["1", "-2", "30", "0", "9223372036854775807", "-9223372036854775808"],
    "floats": ["1.50", "2.25", "-0.1", "3", "0.30000000000000004", "100000000000000000000"],
}


def as_integer(text: str) -> int | None:
    """Python's own int(), limited to what Int64 holds."""
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value in INT64 else None


def as_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def reads_back(text: str, kind: str) -> bool:
    """The oracle: Python's str(int(text)) for integers; for floats the documented notation
    and the same number as the shortest repr of float(text), compared as Decimals."""
    if kind == "integer":
        return str(int(text)) == text
    return bool(PLAIN.fullmatch(text)) and Decimal(text) == Decimal(repr(float(text)))


def expected(values: list[str]) -> tuple[str, str | None]:
    """The type and the value the warning names, from the oracle: the first numeric type
    every value parses as, text (naming the first value that does not read back) if any
    value would change, text without a warning if no numeric type fits."""
    for kind, parse in (("integer", as_integer), ("float", as_float)):
        if all(parse(v) is not None for v in values):
            changed = [v for v in values if not reads_back(v, kind)]
            return ("string", changed[0]) if changed else (kind, None)
    return "string", None


@pytest.mark.parametrize("name", CASES)
def test_a_value_that_would_not_read_back_keeps_its_column_as_text(name: str) -> None:
    values = CASES[name]
    kind, changed = expected(values)
    (found,) = casting.infer_types(pl.LazyFrame({name: values}), [ColumnRule(name, name, None)])
    assert str(found.type) == kind
    if changed is None:
        assert found.warning == ""
    else:
        assert found.warning.startswith(f"column {name!r} kept as text: {changed!r} would ")
        in_type = "integer" if as_integer(changed) is not None else "float"
        assert found.warning.endswith(f" as {in_type}")


@pytest.mark.parametrize(
    ("values", "kind", "changed"),
    [
        (["NO", "SE", "FI"], "string", None),  # country codes; SE is no boolean
        (["NO", "NO"], "string", "NO"),  # Norway, not false
        (["yes", "no"], "string", "yes"),
        (["true", "FALSE", "True"], "boolean", None),
        (["2024-01-05", "2024-02-29"], "date", None),
        (["2024-01-05", "24-01-05"], "string", "24-01-05"),  # not the year 24
        (["2024-1-5"], "string", "2024-1-5"),
        (
            ["2024-01-05T10:00:00", "2024-01-05 10:00:00.5", "2024-01-05T10:00:00+02:00"],
            "timestamp",
            None,
        ),
        (["2024-01-05T10:00:00", "2024-1-05T10:00:00"], "string", "2024-1-05T10:00:00"),
    ],
)
def test_booleans_dates_and_timestamps_read_back_too(
    values: list[str], kind: str, changed: str | None
) -> None:
    (found,) = casting.infer_types(pl.LazyFrame({"c": values}), [ColumnRule("c", "c", None)])
    assert str(found.type) == kind
    assert found.warning == "" if changed is None else f"kept as text: {changed!r}" in found.warning


def test_the_warning_says_what_would_be_lost() -> None:
    names = ("zip", "signed", "exponent", "too_long", "norway")
    columns = [ColumnRule(n, n, None) for n in names]
    frame = pl.LazyFrame(
        {
            "zip": ["01001", "00501"],
            "signed": ["2", "+1"],
            "exponent": ["2.5", "1e3"],
            "too_long": ["1", "12345678901234567890"],
            "norway": ["NO", "no"],
        }
    )
    warnings = [f.warning for f in casting.infer_types(frame, columns)]
    assert warnings == [
        "column 'zip' kept as text: '01001' would lose its leading zero as integer",
        "column 'signed' kept as text: '+1' would lose its '+' sign as integer",
        f"column 'exponent' kept as text: '1e3' would become {float('1e3')!r} as float",
        "column 'too_long' kept as text: '12345678901234567890' would become "
        f"{float('12345678901234567890')!r} as float",
        "column 'norway' kept as text: 'NO' would become false as boolean",
    ]


def test_inference_reads_values_after_trimming_and_null_markers() -> None:
    """' 42 ' reads back as 42 once trimmed; null markers are no value at all."""
    frame = pl.LazyFrame(
        {"n": [" 42 ", "N/A", "", None, "\u00a07"], "z": [" 007", "1", "", "", ""]}
    )
    found = casting.infer_types(frame, [ColumnRule("n", "n", None), ColumnRule("z", "z", None)])
    assert [str(f.type) for f in found] == ["integer", "string"]
    assert "'007' would lose its leading zero" in found[1].warning


def test_the_warning_names_the_first_such_value_in_row_order() -> None:
    values = ["1"] * 200_000 + ["0042", "007"] + ["2"] * 1000
    (found,) = casting.infer_types(pl.LazyFrame({"c": values}), [ColumnRule("c", "c", None)])
    assert "'0042'" in found.warning


def test_zip_codes_through_bronze_and_a_spec_less_silver_keep_their_text(
    silver, store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    rows = [
        ["zip", "city", "population"],
        ["00501", "Holtsville", "0"],
        ["01001", "Agawam", "28438"],
        ["10001", "New York", "21102"],
        ["99950", "Ketchikan", "8050"],
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    fill_bronze(store, settings, job, buffer.getvalue().encode())
    result = refine(silver, job)
    types = {c.name: c.type for c in result.schema}
    assert types["zip"] == "String" and types["population"] == "Int64"
    assert "column 'zip' kept as text: '00501' would lose its leading zero as integer" in (
        result.warnings
    )
    silver_rows = read_silver(settings, job).sort("_row_number")
    assert silver_rows["zip"].to_list() == [r[0] for r in rows[1:]]
    assert silver_rows["population"].to_list() == [int(r[2]) for r in rows[1:]]


def streaming_nodes(frame: pl.LazyFrame) -> set[str]:
    """The kinds of node polars' streaming engine runs the query with."""
    graph = frame.show_graph(engine="streaming", plan_stage="physical", raw_output=True)
    return set(re.findall(r'label="([^"\\]+)', graph))


def test_inference_is_one_streaming_pass_that_holds_no_whole_column() -> None:
    """Only per-batch nodes and reductions: memory does not grow with the rows. (Before,
    the boolean attempt's replace_strict ran over whole columns.)"""
    columns = [ColumnRule(n, n, None) for n in ("a", "b")]
    frame = pl.LazyFrame({"a": ["1", "true"], "b": ["x", "2024-01-05"]})
    nodes = streaming_nodes(casting.inference_frame(frame, columns))
    assert nodes <= {"in-memory-source", "select", "with-columns", "reduce"}, nodes
    assert "reduce" in nodes


def test_evidence_from_batches_merges_to_the_type_of_all_their_rows() -> None:
    """An incremental silver infers over each batch and merges what it saw: the result is
    what one pass over all the rows gives."""
    columns = [ColumnRule(n, n, None) for n in ("zip", "n", "late")]
    batches = [
        {"zip": ["10001", "99950"], "n": [None, None], "late": ["1", "2"]},
        {"zip": ["00501", "01001"], "n": ["1", "2"], "late": ["2.5", None]},
    ]
    text = dict.fromkeys(("zip", "n", "late"), pl.String)  # bronze columns are text
    seen = [casting.gather_evidence(pl.LazyFrame(b, schema=text), columns) for b in batches]
    stored = [[casting.Evidence.from_dict(e.as_dict()) for e in s] for s in seen]
    merged = [a.merged(b) for a, b in zip(*stored, strict=True)]
    whole = {n: batches[0][n] + batches[1][n] for n in ("zip", "n", "late")}
    assert [casting.column_type(c.target, e) for c, e in zip(columns, merged, strict=True)] == (
        casting.infer_types(pl.LazyFrame(whole, schema=text), columns)
    )
    assert "'00501' would lose its leading zero" in casting.column_type("zip", merged[0]).warning
    older = casting.Evidence.from_dict({"any": True, "parses": ["integer", "float"]})
    assert casting.column_type("c", older).type.name == "integer"  # written before `lost`
