"""The sample customer-data models, each checked against the same answer computed in polars."""

from __future__ import annotations

import re
from decimal import Decimal

import polars as pl
import pytest

from flowforge.layout import JobKey
from flowforge.settings import Settings
from tests.gold import silver_cases
from tests.gold.conftest import build, commit_dimension, commit_silver, read_model

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def sql_sum(column: str) -> pl.Expr:
    """SUM as SQL has it: NULL, not 0, when every value is NULL."""
    return pl.when(pl.col(column).count() > 0).then(pl.col(column).sum()).alias(column)


@pytest.fixture(scope="module")
def countries(settings: Settings) -> pl.DataFrame:
    path = silver_cases.EXAMPLES / "dimensions/countries.csv"
    commit_dimension(settings, "countries", pl.read_csv(path, infer_schema=False))
    return pl.read_csv(path)


def run_sample(gold, settings: Settings, job: JobKey, silver: pl.DataFrame, name: str, models):
    commit_silver(settings, job, silver.head(90), silver.slice(90))
    sql = {model: silver_cases.model_sql(name, model) for model in models}
    result = build(gold, job, sql, dimensions=["countries"])
    return {model: read_model(settings, result, model) for model in models}


def test_customer_models(gold, settings: Settings, job: JobKey, countries) -> None:
    silver = silver_cases.customers()
    out = run_sample(
        gold, settings, job, silver, "customers",
        ["customers_by_country", "signups_per_month", "data_quality"],
    )  # fmt: skip

    named = silver.join(
        countries.rename({"code": "country_code", "name": "country_name"}),
        on="country_code",
        how="left",
    )
    by_country = (
        named.group_by("country_code", "country_name", "region")
        .agg(
            pl.col("customer_id").n_unique().alias("customers"),
            pl.col("customer_id").filter(pl.col("status") == "active").n_unique().alias("active"),
            sql_sum("lifetime_value").alias("total"),
            pl.col("lifetime_value").cast(pl.Float64).mean().alias("avg"),
        )
        .sort(["customers", "country_code"], descending=[True, False])
    )
    got = out["customers_by_country"]
    assert got["country_code"].to_list() == by_country["country_code"].to_list()
    assert got["country_name"].to_list() == by_country["country_name"].to_list()
    assert got["region"].to_list() == by_country["region"].to_list()
    assert got["customers"].to_list() == by_country["customers"].to_list()
    assert got["active_customers"].to_list() == by_country["active"].to_list()
    assert got["total_lifetime_value"].to_list() == by_country["total"].to_list()
    assert got["avg_lifetime_value"].to_list() == pytest.approx(
        [round(v, 2) for v in by_country["avg"].to_list()], abs=0.006
    )
    assert "XX" in got["country_code"].to_list()  # unknown codes stay, with no name
    assert got.filter(pl.col("country_code") == "XX")["country_name"].to_list() == [None]

    months = (
        silver.drop_nulls("signup_date")
        .group_by(pl.col("signup_date").dt.truncate("1mo").alias("month"))
        .agg(pl.col("customer_id").n_unique().alias("signups"))
        .sort("month")
        .with_columns(pl.col("signups").cum_sum().alias("signups_to_date"))
    )
    assert out["signups_per_month"].to_dicts() == months.to_dicts()

    known = set(countries["code"].to_list())
    rows = silver.to_dicts()
    ids = silver["customer_id"].value_counts()
    repeated = set(ids.filter(pl.col("count") > 1)["customer_id"].to_list())
    checks = {
        "missing_customer_id": sum(r["customer_id"] is None for r in rows),
        "duplicate_customer_id": sum(r["customer_id"] in repeated for r in rows),
        "missing_email": sum(r["email"] is None for r in rows),
        "invalid_email": sum(
            r["email"] is not None and not EMAIL.fullmatch(r["email"]) for r in rows
        ),
        "unknown_country": sum(r["country_code"] not in known for r in rows),
        "missing_signup_date": sum(r["signup_date"] is None for r in rows),
        "updated_before_signup": sum(
            None not in (r["updated_at"], r["signup_date"])
            and r["updated_at"].date() < r["signup_date"]
            for r in rows
        ),
        "missing_lifetime_value": sum(r["lifetime_value"] is None for r in rows),
        "negative_lifetime_value": sum((r["lifetime_value"] or 0) < 0 for r in rows),
    }
    quality = out["data_quality"]
    assert dict(zip(quality["check_name"], quality["failing_rows"], strict=True)) == checks
    assert list(quality["check_name"]) == list(checks)  # in the documented order
    assert set(quality["total_rows"]) == {len(rows)}
    assert quality["failing_percent"].to_list() == [
        round(100 * n / len(rows), 2) for n in checks.values()
    ]
    assert checks["duplicate_customer_id"] and checks["missing_lifetime_value"]  # dirty data


def test_order_and_product_models(gold, settings: Settings, countries) -> None:
    orders = silver_cases.orders()
    out = run_sample(
        gold, settings, JobKey("customer-data-test", "orders"), orders, "orders",
        ["revenue_per_month", "orders_by_status"],
    )  # fmt: skip
    kept = orders.drop_nulls("order_date").filter(
        ~pl.col("status").fill_null("").is_in(["cancelled", "refunded"])
    )
    revenue = (
        kept.group_by(
            pl.col("order_date").dt.truncate("1mo").alias("month"),
            pl.col("currency").str.to_uppercase(),
        )
        .agg(
            pl.col("order_id").n_unique().alias("orders"),
            pl.col("quantity").sum().alias("items"),
            sql_sum("amount").alias("revenue"),
        )
        .sort("month", "currency")
    )
    assert out["revenue_per_month"].to_dicts() == revenue.to_dicts()
    statuses = orders.group_by(pl.col("status").fill_null("unknown")).agg(
        pl.len().alias("orders"), sql_sum("amount")
    )
    got = {r["status"]: (r["orders"], r["amount"]) for r in out["orders_by_status"].to_dicts()}
    assert got == {r["status"]: (r["orders"], r["amount"]) for r in statuses.to_dicts()}
    assert out["orders_by_status"]["percent_of_orders"].sum() == pytest.approx(100, abs=0.05)

    products = silver_cases.products()
    out = run_sample(
        gold, settings, JobKey("customer-data-test", "products"), products, "products",
        ["products_by_category"],
    )  # fmt: skip
    categories = (
        products.group_by("category")
        .agg(
            pl.len().alias("products"),
            pl.col("active").fill_null(False).sum().alias("active_products"),
            pl.col("price").min().alias("min_price"),
            pl.col("price").max().alias("max_price"),
        )
        .sort("category")
    )
    got = out["products_by_category"]
    for column in ("category", "products", "active_products", "min_price", "max_price"):
        assert got[column].to_list() == categories[column].to_list(), column
    assert all(isinstance(v, Decimal) for v in got["min_price"].to_list())
