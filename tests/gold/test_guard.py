"""The SQL guard lets ordinary analytical SQL through (the hostile side is test_hostile_sql)."""

from __future__ import annotations

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


def test_trailing_semicolons_are_dropped_from_the_query() -> None:
    assert check_model_sql("m", "  SELECT 1 FROM silver ;; \n", READABLE) == "SELECT 1 FROM silver"


def test_location_counts_lines_and_characters() -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_model_sql("m", "SELECT 'Zoë' AS n\n  FROM silver, read_csv('x')", READABLE)
    assert "(line 2, column 16)" in caught.value.message
