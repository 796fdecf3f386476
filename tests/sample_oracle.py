"""What the sample workflow gives on the sample CSVs, computed without FlowForge's code.

The csv module reads examples/data; plain Python applies the sample workflow's silver specs
(read from the YAML with PyYAML: casts, null markers, case, rules, dedupe); DuckDB runs the
gold models' own SQL over that silver, and plain Python computes what the workflow's own
models (its top-level `gold:`) answer, without their SQL. Every test that checks the
sample's counts imports EXPECTED from here, so a change in the data or the specs changes
them in one place, and a FlowForge bug cannot make its own expectation.
"""

from __future__ import annotations

import csv
import re
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "workflows" / "customer-data.yaml"
NULL_MARKERS = ("", "NULL", "N/A", "null")
_TRUE, _FALSE = {"true", "t", "yes", "y", "1"}, {"false", "f", "no", "n", "0"}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")
_DECIMAL_TYPE = re.compile(r"decimal\((\d+),(\d+)\)")
Counts = tuple[int, int, int]  # rows in, rows out, rows rejected


def jobs() -> dict[str, dict[str, Any]]:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return {job["id"]: job for job in workflow["jobs"]}


def bronze(job_id: str) -> tuple[list[str], list[list[str]], int]:
    """Header, the records with the header's number of fields, and how many had another."""
    with (ROOT / "examples" / "data" / f"{job_id}.csv").open(encoding="utf-8", newline="") as f:
        header, *records = list(csv.reader(f))
    good = [r for r in records if len(r) == len(header)]
    return header, good, len(records) - len(good)


def cast(text: str | None, kind: str, formats: list[str]) -> tuple[bool, Any]:
    """(ok, value): a null stays null; a value that does not parse is not ok."""
    if text is None or kind == "string":
        return True, text
    if kind == "integer":
        return (True, int(text)) if re.fullmatch(r"[+-]?\d+", text) else (False, None)
    if kind.startswith("decimal"):
        precision, scale = map(int, _DECIMAL_TYPE.fullmatch(kind).groups())  # type: ignore[union-attr]
        if not _NUMBER.fullmatch(text):
            return False, None
        try:
            value = Decimal(text).quantize(Decimal(1).scaleb(-scale), ROUND_HALF_EVEN)
        except InvalidOperation:
            return False, None
        return (len(value.as_tuple().digits) <= precision), value
    if kind == "boolean":
        lowered = text.lower()
        return (lowered in _TRUE | _FALSE), lowered in _TRUE
    if kind == "date":
        for fmt in formats or ["%Y-%m-%d"]:
            try:
                return True, datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        return False, None
    if kind == "timestamp":
        try:
            return True, datetime.fromisoformat(text)
        except ValueError:
            return False, None
    raise ValueError(f"the oracle does not know type {kind}")


def clean(text: str, column: dict[str, Any]) -> str | None:
    text = text.strip(" \t\n\r\x0b\x0c\u00a0\u3000")
    if text in column.get("null_markers", NULL_MARKERS):
        return None
    case = column.get("case")
    return text.lower() if case == "lower" else text.upper() if case == "upper" else text


def fails(rule: dict[str, Any], value: Any) -> bool:
    """Whether a typed value breaks a rule; a null passes every rule but not_null."""
    if rule["type"] == "not_null":
        return value is None
    if value is None:
        return False
    if rule["type"] == "regex":
        return re.fullmatch(rule["pattern"], value) is None
    if rule["type"] == "accepted_values":
        return value not in [str(v) for v in rule["values"]]
    if rule["type"] == "length":
        return not rule.get("min_length", 0) <= len(value) <= rule.get("max_length", 10**9)
    if rule["type"] == "range":
        low, high = rule.get("min"), rule.get("max")
        return (low is not None and value < Decimal(str(low))) or (
            high is not None and value > Decimal(str(high))
        )
    raise ValueError(f"the oracle does not know rule {rule['type']}")


def first_failure(row: dict[str, Any], bad: list[str], spec: dict[str, Any]) -> str | None:
    """The rule id a quarantined row is counted under: its first failed check, casts and
    required columns (in column order) before the spec's drop rules (in spec order)."""
    if bad:
        return bad[0]
    for rule in spec.get("expectations", []):
        if rule.get("action") == "drop" and fails(rule, row[rule["column"]]):
            return str(rule.get("id") or f"{rule['type']}_{rule['column']}")
    return None


def silver_rows(job_id: str) -> tuple[list[dict[str, Any]], list[str], int]:
    """The kept rows before dedupe, the reason of each quarantined row, rows read."""
    spec = jobs()[job_id]["silver"]
    header, records, _ = bronze(job_id)
    kept: list[dict[str, Any]] = []
    reasons: list[str] = []
    for record in records:
        raw = dict(zip(header, record, strict=True))
        row, bad = {}, []
        for column in spec["columns"]:
            target = column.get("target", column["source"])
            kind = column.get("type", "string")
            good, value = cast(
                clean(raw[column["source"]], column), kind, column.get("formats", [])
            )
            if not good:
                bad.append(f"cast_{target}")
            if good and column.get("required") and value is None:
                bad.append(f"required_{target}")
            row[target] = value
        reason = first_failure(row, bad, spec)
        if reason is None:
            kept.append(row)
        else:
            reasons.append(reason)
    return kept, reasons, len(records)


def quarantine_reasons(job_id: str) -> dict[str, int]:
    _, reasons, _ = silver_rows(job_id)
    return {r: reasons.count(r) for r in sorted(set(reasons))}


def silver(job_id: str) -> tuple[list[dict[str, Any]], Counts]:
    spec = jobs()[job_id]["silver"]
    kept, reasons, read = silver_rows(job_id)
    quarantined = len(reasons)
    dedupe = spec.get("dedupe", {})
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in kept:  # later rows win ties: bronze order
        key = tuple(row[k] for k in dedupe.get("keys", list(row)))
        sequence = dedupe.get("sequence_by")
        if key not in latest or sequence is None or row[sequence] >= latest[key][sequence]:
            latest[key] = row
    rows = list(latest.values())
    return rows, (read, len(rows), quarantined)


def gold(job_id: str, rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(model, rows) for each model of the job, then the built-in profile."""
    job = jobs()[job_id]
    con = duckdb.connect()
    frame = pl.DataFrame(rows, infer_schema_length=None)
    con.register("silver", frame)
    countries = ROOT / "examples" / "dimensions" / "countries.csv"
    con.execute(f"CREATE VIEW dim_countries AS FROM read_csv('{countries}', all_varchar=true)")
    found = []
    for model in job["gold"]["models"]:
        sql = (WORKFLOW.parent / model["sql_file"]).read_text(encoding="utf-8")
        found.append((model["name"], len(con.execute(sql).fetchall())))
    found.append(("profile", len(frame.columns)))
    return found


@cache
def expected() -> dict[str, dict[str, Counts]]:
    """Per job and layer: (rows in, rows out, rows rejected) of a first run."""
    result = {}
    for job_id in jobs():
        header, records, rejected = bronze(job_id)
        rows, silver_counts = silver(job_id)
        models = gold(job_id, rows)
        result[job_id] = {
            "bronze": (len(records) + rejected, len(records), rejected),
            "silver": silver_counts,
            "gold": (silver_counts[1], sum(n for _, n in models), 0),
        }
    return result


EXPECTED = expected()


def balance_figures(job_id: str) -> dict[str, int]:
    """The row balance sheet of a first run of the job, as the flow records it."""
    bronze_in, bronze_out, rejected = EXPECTED[job_id]["bronze"]
    silver_in, silver_out, quarantined = EXPECTED[job_id]["silver"]
    return {
        "csv_rows": bronze_in,
        "bronze_rows": bronze_out,
        "bronze_rejected": rejected,
        "bronze_dataset_rows": bronze_out,
        "silver_input_rows": silver_in,
        "silver_rows": silver_out,
        "quarantined": quarantined,
        "duplicates_removed": silver_in - silver_out - quarantined,
        "silver_table_rows": silver_out,  # a first run: the table holds this run's rows
    }


def model_rows(job_id: str) -> dict[str, int]:
    rows, _ = silver(job_id)
    return dict(gold(job_id, rows))


def _sql_sum(values: list[Any]) -> Any:
    """SUM as SQL has it: nulls ignored, NULL when nothing is left."""
    kept = [v for v in values if v is not None]
    return sum(kept) if kept else None


def _nulls_last(*values: Any) -> tuple[Any, ...]:
    return tuple(part for v in values for part in (v is None, v if v is not None else 0))


def workflow_models() -> dict[str, list[dict[str, Any]]]:
    """The sample workflow's own models, row for row, from the oracle's silver: valid
    orders (not cancelled or refunded), revenue per customer country, month and currency,
    the three best sellers per category, and every customer's lifetime."""
    orders, _ = silver("orders")
    customers = {c["customer_id"]: c for c in silver("customers")[0]}
    products = {p["product_id"]: p for p in silver("products")[0]}
    with (ROOT / "examples" / "dimensions" / "countries.csv").open(encoding="utf-8") as f:
        countries = {row["code"]: row["name"] for row in csv.DictReader(f)}
    columns = ("order_id", "customer_id", "product_id", "order_date", "quantity", "amount")
    valid = sorted(
        (
            {c: o[c] for c in columns} | {"currency": o["currency"] and o["currency"].upper()}
            for o in orders
            if (o["status"] or "") not in ("cancelled", "refunded")
        ),
        key=lambda o: o["order_id"],
    )
    revenue: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for order in valid:
        customer = customers.get(order["customer_id"])
        if customer is not None and order["order_date"] is not None:
            month = order["order_date"].replace(day=1)
            key = (customer["country_code"], month, order["currency"])
            revenue.setdefault(key, []).append(order)
    sold: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for order in valid:
        product = products.get(order["product_id"])
        if product is not None:
            key = (product["category"], product["product_id"], product["name"])
            sold.setdefault(key, []).append(order)
    ranked: dict[Any, list[dict[str, Any]]] = {}
    for (category, product_id, name), group in sold.items():
        ranked.setdefault(category, []).append(
            {
                "product_id": product_id,
                "name": name,
                "items": _sql_sum([o["quantity"] for o in group]),
                "orders": len({o["order_id"] for o in group}),
            }
        )
    best = []
    for category in sorted(ranked, key=_nulls_last):
        # Most items first (no items last), then the lower product id.
        ranking = sorted(
            ranked[category],
            key=lambda r: (r["items"] is None, -(r["items"] or 0), r["product_id"]),
        )
        for rank, row in enumerate(ranking[:3], start=1):
            best.append({"category": category, "rank": rank} | row)
    lifetime = []
    for customer_id in sorted(customers):
        customer = customers[customer_id]
        mine = [o for o in valid if o["customer_id"] == customer_id]
        dates = [o["order_date"] for o in mine if o["order_date"] is not None]
        row = {k: customer[k] for k in ("customer_id", "first_name", "last_name", "country_code")}
        row |= {
            "first_order": min(dates, default=None),
            "last_order": max(dates, default=None),
            "orders": len({o["order_id"] for o in mine}),
            "items": _sql_sum([o["quantity"] for o in mine]) or 0,
        }
        for currency in ("EUR", "GBP", "USD"):
            amounts = [o["amount"] for o in mine if o["currency"] == currency]
            row[f"revenue_{currency.lower()}"] = _sql_sum(amounts) or Decimal(0)
        lifetime.append(row)
    return {
        "valid_orders": valid,
        "revenue_by_country_month": [
            {
                "country_code": code,
                "country_name": countries.get(code) if code is not None else None,
                "month": month,
                "currency": currency,
                "orders": len({o["order_id"] for o in group}),
                "customers": len({o["customer_id"] for o in group}),
                "items": _sql_sum([o["quantity"] for o in group]),
                "revenue": _sql_sum([o["amount"] for o in group]),
            }
            for (code, month, currency), group in sorted(
                revenue.items(), key=lambda item: _nulls_last(*item[0])
            )
        ],
        "best_sellers_by_category": best,
        "customer_lifetime": lifetime,
    }


__all__ = [
    "EXPECTED",
    "balance_figures",
    "date",
    "model_rows",
    "quarantine_reasons",
    "workflow_models",
]
