"""The SQL guard lets ordinary analytical SQL through (the hostile side is test_hostile_sql),
and its idea of which names are CTEs is DuckDB's own."""

from __future__ import annotations

import threading

import duckdb
import pytest

from flowforge.errors import InvalidArgument
from services.gold.guard import check_model_sql

READABLE = {"silver", "dim_countries"}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM silver",
        "FROM silver SELECT count(*)",
        "select * from SILVER s join DIM_COUNTRIES d on d.code = s.country_code",
        "WITH a AS (SELECT 1 AS x), b AS (SELECT * FROM a) SELECT * FROM b, silver",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) "
        "SELECT * FROM t",
        "WITH a AS (SELECT 1 AS x), b AS (SELECT * FROM a), "
        "c AS (SELECT * FROM b JOIN a USING (x)) SELECT * FROM c",
        "WITH RECURSIVE t(n) AS (SELECT i FROM range(3) AS r(i) UNION ALL "
        "SELECT n + 10 FROM t WHERE n < 20) SELECT * FROM t",
        "WITH RECURSIVE seed AS (SELECT min(n) AS n FROM silver), "
        "t(n) AS (SELECT n FROM seed UNION ALL SELECT t.n + 1 FROM t, seed WHERE t.n < seed.n + 3) "
        "SELECT * FROM t",
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t "
        "WHERE n IN (SELECT n FROM t) AND n < 3) SELECT * FROM t",
        "WITH silver AS (SELECT * FROM silver WHERE n > 0) SELECT * FROM silver",
        "SELECT * FROM (WITH a AS (SELECT * FROM silver) SELECT * FROM a)",
        "SELECT *, (SELECT max(x) FROM silver) FROM silver WHERE x IN (SELECT x FROM silver)",
        "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(n, s)",
        "SELECT * FROM range(10) AS r(i), unnest([1, 2]) AS u(j)",
        "SELECT * FROM generate_series(1, 3)",
        "SELECT * FROM (PIVOT silver ON status IN ('a', 'b') USING count(*))",
        "SELECT * FROM (UNPIVOT (SELECT 1 AS a, 2 AS b) ON a, b INTO NAME k VALUE v)",
        "SELECT x FROM silver UNION ALL SELECT code FROM dim_countries ORDER BY 1",
        "SELECT date_trunc('month', d) AS m, count(*) FROM silver GROUP BY ALL;",
        "-- a comment first\nSELECT 1 AS one FROM silver -- and one after",
    ],
)
def test_ordinary_queries_pass(sql: str) -> None:
    assert check_model_sql("m", sql, READABLE)


# Each query names a CTE `cat` after a table in the catalog (as pg_settings, duckdb_views
# or sqlite_master are). DuckDB says which of the two each query reads; the guard must
# pass exactly those that read only the CTE.
SHADOWED = {
    "WITH cat AS (FROM cat) FROM cat": False,
    "WITH cat AS MATERIALIZED (FROM cat) FROM cat": False,
    "WITH RECURSIVE cat AS (FROM cat) FROM cat": False,
    "SELECT * FROM (WITH cat AS (FROM cat) FROM cat)": False,
    "WITH a AS (WITH cat AS (FROM cat) FROM cat) FROM a": False,
    "WITH RECURSIVE a AS (FROM cat), cat AS (SELECT 'cte' AS x) FROM a": False,
    # The anchor of a recursive CTE reads the catalog's `cat`, even inside a subquery,
    # a union or the body's own WITH; so do both sides of what is not `anchor UNION step`.
    "WITH RECURSIVE cat(x) AS (FROM cat UNION ALL SELECT x FROM cat WHERE false) FROM cat": False,
    "WITH RECURSIVE cat(x) AS (SELECT (SELECT max(x) FROM cat) UNION SELECT x FROM cat) FROM cat": (
        False
    ),
    "WITH RECURSIVE cat(x) AS (SELECT 'cte' UNION ALL SELECT x FROM cat "
    "UNION ALL SELECT x FROM cat WHERE false) FROM cat": False,
    "WITH RECURSIVE cat(x) AS (WITH a AS (FROM cat) FROM a "
    "UNION ALL SELECT x FROM cat WHERE false) FROM cat": False,
    "WITH RECURSIVE cat(x) AS (FROM cat UNION ALL BY NAME FROM cat WHERE false) FROM cat": False,
    "WITH RECURSIVE cat(x) AS (FROM cat INTERSECT FROM cat) FROM cat": False,
    "WITH RECURSIVE cat(x) USING KEY (x) AS (FROM cat UNION SELECT x FROM cat WHERE false) "
    "FROM cat": False,
    # Only the recursive step reads the CTE itself (the rows so far).
    "WITH RECURSIVE cat(x) AS (SELECT 'cte' UNION ALL SELECT x || '+' FROM cat "
    "WHERE length(x) < 5) FROM cat": True,
    "WITH RECURSIVE cat(x) AS (SELECT 'cte' UNION ALL (SELECT x || '+' FROM cat "
    "WHERE length(x) < 5 UNION ALL SELECT x FROM cat WHERE false)) FROM cat": True,
    "WITH RECURSIVE cat(x) AS (SELECT 'cte' UNION ALL SELECT (SELECT max(x) || '+' FROM cat) "
    "FROM cat WHERE length(x) < 5) FROM cat": True,
    "WITH RECURSIVE cat(x) AS (WITH a AS (SELECT 'cte' AS y) FROM a "
    "UNION ALL SELECT x || '+' FROM cat, a WHERE length(x) < 5) FROM cat": True,
    "WITH RECURSIVE cat(x) USING KEY (x) AS (SELECT 'cte' UNION SELECT x FROM cat WHERE false) "
    "FROM cat": True,
    "WITH cat AS (SELECT 'cte' AS x), b AS (WITH cat AS (FROM cat) FROM cat) FROM b": True,
    "WITH cat AS (SELECT 'cte' AS x) SELECT * FROM (WITH cat AS (FROM cat) FROM cat)": True,
}


@pytest.mark.parametrize(("sql", "passes"), SHADOWED.items())
def test_cte_scope_is_what_duckdb_resolves(sql: str, passes: bool) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE cat AS SELECT 'catalog' AS x")
    timer = threading.Timer(10, con.interrupt)  # a runaway recursion fails, not hangs
    timer.start()
    try:
        rows = con.execute(sql).fetchall()
    finally:
        timer.cancel()
        con.close()
    assert rows and ("catalog" in str(rows)) != passes, rows
    try:
        check_model_sql("m", sql, READABLE)
    except InvalidArgument as exc:
        assert not passes, exc.message
        assert "reads 'cat'" in exc.message
    else:
        assert passes


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        (
            "WITH pg_settings AS (FROM pg_settings) SELECT name, setting FROM pg_settings",
            "pg_settings",
        ),
        ("WITH duckdb_views AS (FROM duckdb_views) SELECT sql FROM duckdb_views", "duckdb_views"),
        (
            "WITH sqlite_master AS (SELECT * FROM sqlite_master) SELECT sql FROM sqlite_master",
            "sqlite_master",
        ),
        (
            "WITH RECURSIVE pg_settings AS (FROM pg_settings) SELECT * FROM pg_settings",
            "pg_settings",
        ),
        (
            "WITH RECURSIVE duckdb_views AS (FROM duckdb_views UNION ALL "
            "FROM duckdb_views WHERE false) SELECT sql FROM duckdb_views",
            "duckdb_views",
        ),
        ("SELECT * FROM (WITH pg_settings AS (FROM pg_settings) FROM pg_settings)", "pg_settings"),
        ("SELECT * FROM silver WHERE n IN (WITH s AS (FROM s) SELECT 1 FROM s)", "s"),
    ],
)
def test_a_cte_named_after_a_catalog_table_is_not_itself_in_its_body(sql: str, table: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_model_sql("m", sql, READABLE)
    assert f"reads {table!r}: a model may read only `silver`" in caught.value.message


def test_trailing_semicolons_are_dropped_and_leading_lines_kept() -> None:
    # What comes first stays, so DuckDB's line and column numbers are the model's own.
    query = check_model_sql("m", "\n  SELECT 1 FROM silver ;; \n", READABLE)
    assert query == "\n  SELECT 1 FROM silver"


def test_location_counts_lines_and_characters() -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_model_sql("m", "SELECT 'Zoë' AS n\n  FROM silver, read_csv('x')", READABLE)
    assert "(line 2, column 16)" in caught.value.message
