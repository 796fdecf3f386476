"""Bronze's table then silver over a real channel, on a hand-written dirty customers CSV.

Every expected row, quarantine reason and count below was worked out by hand from
cases/customers_dirty.csv and examples/silver/customers.yaml (see the comments per row).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import yaml

from flowforge.layout import JobKey, landing_prefix
from flowforge.settings import Settings
from tests.silver.bronze_table import BronzeCommit, write_bronze
from tests.silver.conftest import read_quarantine, read_silver, refine, serving

CASES = Path(__file__).resolve().parent / "cases"
SPEC = yaml.safe_load((CASES.parents[2] / "examples" / "silver" / "customers.yaml").read_text())


@pytest.fixture
def customers(settings: Settings, job: JobKey) -> BronzeCommit:
    data = (CASES / "customers_dirty.csv").read_bytes()
    return write_bronze(settings, job, data, "b1", source="customers.csv")


def test_dirty_customers_through_bronze_and_silver(
    customers: BronzeCommit, silver, channel, settings: Settings, job: JobKey
) -> None:
    # 18 data lines; the short line 17 is bronze's reject, 17 rows reach silver.
    assert (customers.rows, customers.rejected) == (17, 1)
    result = refine(silver, job, SPEC, run_id="s1")

    assert result.input_run_id == "b1"
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (17, 7, 7)
    assert result.duplicates_removed == 3  # customers 1, 2 and 10 appear twice
    assert result.rows_in == result.rows_out + result.rows_rejected + result.duplicates_removed
    assert [(d.key_count, d.keys, d.rows_removed) for d in result.duplicates] == [(2, 3, 3)]
    assert dict(result.rejected_by_reason) == {
        "cast_signup_date": 1,
        "cast_lifetime_value": 2,
        "required_customer_id": 1,
        "cast_customer_id": 1,
        "regex_email": 1,
        "range_lifetime_value": 1,
    }

    silver_rows = read_silver(settings, job).sort("customer_id")
    business = silver_rows.select(
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "country_code",
        "signup_date",
        "updated_at",
        "lifetime_value",
        "status",
        "_row_number",
    )
    assert business.rows() == [
        # line 12 (updated 2024-03-01) replaces line 1
        (1, "Ada", "Lovelace", "ada.lovelace@example.com", "GB", date(2024, 1, 15),
         datetime(2024, 3, 1, 10), Decimal("150.75"), "active", 12),
        # line 2: email trimmed and lowercased, country uppercased; line 13 is older
        (2, "Alan", "Turing", "alan.turing@example.com", "GB", date(2024, 2, 1),
         datetime(2024, 2, 2, 8, 30), Decimal("2500.00"), "active", 2),
        # line 3: the second date format, N/A is null
        (3, "Grace", "Hopper", "grace@example.com", "US", date(2024, 3, 31),
         datetime(2024, 4, 1), None, "active", 3),
        # line 11: kept although status and country break warn rules
        (9, "Łukasz", "Nowak", "lukasz@example.com", "DEU", date(2024, 1, 9),
         datetime(2024, 1, 10), Decimal("7.25"), "pending", 11),
        # lines 14 and 15 tie on updated_at: the later bronze row wins
        (10, "José", "García", "jose.garcia@example.com", "ES", date(2024, 6, 1),
         datetime(2024, 6, 2), Decimal("43.00"), "active", 15),
        # line 16: a quoted comma, a UTC "Z" timestamp, 0 is inside the range
        (11, "Doe, Jane", "Smith", "jane@example.com", "US", date(2024, 7, 1),
         datetime(2024, 7, 1), Decimal("0.00"), "active", 16),
        # line 18: non-Latin text, a space instead of "T"
        (13, "名前", "テスト", "test@example.jp", "JP", date(2024, 8, 1),
         datetime(2024, 8, 1, 12, 30), Decimal("99999.99"), "inactive", 18),
    ]  # fmt: skip
    assert silver_rows.schema["lifetime_value"] == pl.Decimal(12, 2)
    assert silver_rows.schema["updated_at"] == pl.Datetime("us")
    assert set(silver_rows["_bronze_run_id"]) == {"b1"}
    assert set(silver_rows["_silver_run_id"]) == {"s1"}
    assert set(silver_rows["_source_key"]) == {landing_prefix(job) + "customers.csv"}

    quarantine = read_quarantine(settings, job).sort("_row_number")
    assert result.reject_objects and all(
        o.key.startswith(result.side_table + "/part-") for o in result.reject_objects
    )
    assert quarantine.select("_row_number", "_rule_id", "_column", "_reason").rows() == [
        (4, "cast_signup_date", "signup_date",
         "'2024-13-45' is not a valid date (formats: %Y-%m-%d, %d/%m/%Y)"),
        (5, "cast_lifetime_value", "lifetime_value", "'abc' is not a valid decimal(12,2)"),
        (6, "cast_lifetime_value", "lifetime_value", "'1,234.50' is not a valid decimal(12,2)"),
        (7, "required_customer_id", "customer_id", "the value is missing (empty or a null marker)"),
        (8, "cast_customer_id", "customer_id", "'12a' is not a valid integer"),
        (9, "regex_email", "email", r"'not-an-email' does not match [^@\s]+@[^@\s]+\.[a-z]+"),
        (10, "range_lifetime_value", "lifetime_value", "'-5.00' is outside [0, 100000]"),
    ]  # fmt: skip
    # The original text of every column travels with the reason.
    assert quarantine.row(2, named=True)["lifetime_value"] == "1,234.50"
    assert quarantine.row(3, named=True)["customer_id"] == ""

    quality = {q.rule_id: (q.action, q.checked, q.passed, q.failed) for q in result.quality}
    assert quality == {
        "cast_customer_id": ("drop", 17, 16, 1),
        "required_customer_id": ("drop", 17, 16, 1),
        "cast_signup_date": ("drop", 17, 16, 1),
        "cast_updated_at": ("drop", 17, 17, 0),
        "cast_lifetime_value": ("drop", 17, 15, 2),
        # rules check the 12 rows whose casts passed
        "regex_email": ("drop", 12, 11, 1),
        "accepted_values_status": ("warn", 12, 11, 1),
        "range_lifetime_value": ("drop", 12, 11, 1),
        "length_country_code": ("warn", 12, 11, 1),
    }
    assert len(result.warnings) == 3
    assert "'accepted_values_status'" in result.warnings[0] and "1 of 12" in result.warnings[0]
    assert "'length_country_code'" in result.warnings[1]
    assert result.warnings[2].startswith("1 keys (customer_id) had rows tied on 'updated_at'")
    assert serving(channel)
