"""Silver-shaped frames for gold tests, cast from the sample CSVs with polars.

Gold reads whatever silver committed; these stand in for silver's output (typed columns
plus `_`-prefixed audit columns) so gold is tested before and apart from the silver
service. Rows whose values do not parse keep a null, which the quality model counts.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NULLS = ["", "N/A", "NULL", "null"]


def _text(name: str) -> pl.Expr:
    value = pl.col(name).str.strip_chars()
    return pl.when(value.is_in(NULLS)).then(None).otherwise(value).alias(name)


def _decimal(name: str) -> pl.Expr:
    return _text(name).cast(pl.Decimal(12, 2), strict=False)


def _audit(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit(source).alias("_source_key"),
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("_row_number"),
        # Int64 as in the tables: the 64 bits of the hash read as signed.
        pl.concat_str(pl.all().cast(pl.String).fill_null(""))
        .hash()
        .reinterpret(signed=True)
        .alias("_row_hash"),
    )


def raw(job: str) -> pl.DataFrame:
    return pl.read_csv(
        EXAMPLES / "data" / f"{job}.csv", infer_schema=False, truncate_ragged_lines=True
    )


def customers() -> pl.DataFrame:
    frame = raw("customers").select(
        _text("customer_id").cast(pl.Int64, strict=False).alias("customer_id"),
        _text("first_name").alias("first_name"),
        _text("last_name").alias("last_name"),
        _text("email").str.to_lowercase().alias("email"),
        _text("country_code").alias("country_code"),
        pl.coalesce(
            _text("signup_date").str.to_date("%Y-%m-%d", strict=False),
            _text("signup_date").str.to_date("%d/%m/%Y", strict=False),
        ).alias("signup_date"),
        _text("updated_at").str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False).alias("updated_at"),
        _decimal("lifetime_value").alias("lifetime_value"),
        _text("status").str.to_lowercase().alias("status"),
    )
    return _audit(frame, "landing/customer-data/customers/customers.csv")


def orders() -> pl.DataFrame:
    frame = raw("orders").select(
        _text("order_id").alias("order_id"),
        _text("customer_id").cast(pl.Int64, strict=False).alias("customer_id"),
        _text("product_id").alias("product_id"),
        _text("order_date").str.to_date("%Y-%m-%d", strict=False).alias("order_date"),
        _text("quantity").cast(pl.Int64, strict=False).alias("quantity"),
        _decimal("amount").alias("amount"),
        _text("currency").alias("currency"),
        _text("status").str.to_lowercase().alias("status"),
    )
    return _audit(frame, "landing/customer-data/orders/orders.csv")


def products() -> pl.DataFrame:
    truthy = _text("active").str.to_lowercase().is_in(["true", "yes", "1"])
    frame = raw("products").select(
        _text("product_id").alias("product_id"),
        _text("name").alias("name"),
        _text("category").alias("category"),
        _decimal("price").alias("price"),
        pl.when(_text("active").is_null()).then(None).otherwise(truthy).alias("active"),
    )
    return _audit(frame, "landing/customer-data/products/products.csv")


def model_sql(job: str, model: str) -> str:
    return (EXAMPLES / "models" / "customer-data" / job / f"{model}.sql").read_text()
