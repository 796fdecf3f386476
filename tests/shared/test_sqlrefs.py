"""The tables a query names, as DuckDB's parser sees them: schema, name and line, CTEs not."""

from __future__ import annotations

import pytest

from flowforge.sqlrefs import SqlRefused, TableName, table_references


def names(sql: str) -> list[tuple[str, str, str, int | None]]:
    return [(t.catalog, t.schema, t.name, t.line) for t in table_references(sql)]


def test_schema_qualified_and_quoted_names_with_their_lines() -> None:
    sql = (
        "-- revenue\n"
        "SELECT *\n"
        'FROM silver."daily-sales" AS d\n'
        "JOIN gold.totals USING (day)\n"
        "JOIN dim_countries ON true, other.db.t"
    )
    assert names(sql) == [
        ("", "silver", "daily-sales", 3),
        ("", "gold", "totals", 4),
        ("", "", "dim_countries", 5),
        ("other", "db", "t", 5),
    ]
    shown = [t.shown for t in table_references(sql)]
    assert shown == ['silver."daily-sales"', "gold.totals", "dim_countries", "other.db.t"]


def test_ctes_are_not_tables_but_a_ctes_own_name_in_its_body_is() -> None:
    assert names("WITH a AS (SELECT 1) SELECT * FROM a") == []
    # Inside its own body a CTE's name is the catalogue's table (DuckDB resolves it so).
    assert names("WITH cat AS (FROM cat) FROM cat") == [("", "", "cat", 1)]
    # Table functions and subqueries name no table; what they read inside does.
    assert names("SELECT * FROM range(3), (SELECT * FROM silver.orders)") == [
        ("", "silver", "orders", 1)
    ]


@pytest.mark.parametrize(
    ("sql", "detail"),
    [
        ("", "the SQL is empty"),
        ("SELECT 1; SELECT 2", "must be one SELECT statement; it holds 2 (SELECT, SELECT)"),
        ("DELETE FROM silver.orders", "must be a SELECT (WITH ... SELECT is fine), not DELETE"),
        ("SELEC 1", 'Parser Error: syntax error at or near "SELEC"'),
    ],
)
def test_anything_but_one_select_is_refused(sql: str, detail: str) -> None:
    with pytest.raises(SqlRefused) as caught:
        table_references(sql)
    assert detail in caught.value.detail


def test_a_name_without_location_says_so() -> None:
    assert TableName("", "silver", "x").where == "the query"
