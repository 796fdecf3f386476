"""The built-in `profile` model: one row per silver column, written as SQL over `silver`.

One pass over the data: GROUPING SETS count every value of every column at once, and
each column's statistics come from its own grouping set (row, null and distinct counts,
typed min and max, the most frequent values). Audit columns (`_row_hash`, ...) are left
out: they describe the pipeline, not the data.
"""

from __future__ import annotations

from flowforge.duckdb_s3 import sql_identifier, sql_literal

PROFILE_MODEL = "profile"
TOP_VALUES = 5

_EMPTY = (
    "SELECT NULL::VARCHAR AS column_name, NULL::VARCHAR AS column_type, "
    "NULL::BIGINT AS row_count, NULL::BIGINT AS null_count, NULL::BIGINT AS distinct_count, "
    "NULL::VARCHAR AS min_value, NULL::VARCHAR AS max_value, "
    "NULL::STRUCT(value VARCHAR, count BIGINT)[] AS top_values WHERE false"
)


def profiled_columns(columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, type_) for name, type_ in columns if not name.startswith("_")]


def profile_sql(columns: list[tuple[str, str]]) -> str:
    """The profile query for a `silver` view with these (name, DuckDB type) columns.

    Columns: column_name, column_type, row_count, null_count, distinct_count (non-null
    values), min_value and max_value (as text, compared by type), top_values (up to
    TOP_VALUES {value, count}, most frequent first, ties by ascending value).
    """
    profiled = profiled_columns(columns)
    if not profiled:
        return _EMPTY
    names = [sql_identifier(name) for name, _ in profiled]
    counted = ", ".join(f"{q}, GROUPING({q}) AS __g{i}" for i, q in enumerate(names))
    sets = ", ".join(f"({q})" for q in names)
    per_column = [
        column_stats(i, q, name, type_)
        for i, (q, (name, type_)) in enumerate(zip(names, profiled, strict=True))
    ]
    return (
        f"WITH __counts AS MATERIALIZED (\n"
        f"  SELECT {counted}, count(*) AS __n FROM silver GROUP BY GROUPING SETS ({sets})\n)\n"
        "SELECT column_name, column_type, row_count, null_count, distinct_count, "
        "min_value, max_value, top_values\n"
        "FROM (\n" + "\nUNION ALL\n".join(per_column) + "\n) ORDER BY __position"
    )


def column_stats(position: int, column: str, name: str, type_: str) -> str:
    mine = f"__g{position} = 0"
    top = (
        f"(SELECT coalesce(list({{'value': __v::VARCHAR, 'count': __n}} ORDER BY __n DESC, __v), "
        f"[]) FROM (SELECT {column} AS __v, __n FROM __counts "
        f"WHERE {mine} AND {column} IS NOT NULL ORDER BY __n DESC, __v LIMIT {TOP_VALUES}))"
    )
    return (
        f"SELECT {position} AS __position, {sql_literal(name)} AS column_name, "
        f"{sql_literal(type_)} AS column_type, "
        f"coalesce(sum(__n), 0)::BIGINT AS row_count, "
        f"coalesce(sum(__n) FILTER (WHERE {column} IS NULL), 0)::BIGINT AS null_count, "
        f"count({column})::BIGINT AS distinct_count, "
        f"min({column})::VARCHAR AS min_value, max({column})::VARCHAR AS max_value, "
        f"CAST({top} AS STRUCT(value VARCHAR, count BIGINT)[]) AS top_values "
        f"FROM __counts WHERE {mine}"
    )
