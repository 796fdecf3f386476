"""The function allowlist against DuckDB's own catalogue, as a build's DuckDB has it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from flowforge.duckdb_s3 import httpfs_extension_path, sql_identifier, sql_literal
from flowforge.errors import InvalidArgument
from services.gold.allowed_functions import ALLOWED_FUNCTIONS, ALLOWED_TABLE_FUNCTIONS, REFUSED
from services.gold.guard import check_model_sql

READABLE = {"silver"}


def catalogue() -> list[tuple[str, str, str | None]]:
    """(name, type, macro definition) of every function a build's DuckDB knows."""
    con = duckdb.connect(
        config={"autoload_known_extensions": False, "autoinstall_known_extensions": False}
    )
    try:
        con.execute(f"LOAD {sql_literal(str(httpfs_extension_path()))}")
        rows = con.execute(
            "SELECT DISTINCT lower(function_name), function_type, macro_definition "
            "FROM duckdb_functions() ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    return [(str(name), str(kind), definition) for name, kind, definition in rows]


CATALOGUE = catalogue()
CALLABLE = {name for name, kind, _ in CATALOGUE if kind in ("scalar", "aggregate", "macro")}
# unnest(list) in a SELECT list is the table function unnest, allowed as in FROM.
OFF_THE_LIST = sorted({name for name, _, _ in CATALOGUE} - ALLOWED_FUNCTIONS - {"unnest"})
REFUSED_NAMES = frozenset().union(*REFUSED.values())


def test_every_function_of_the_catalogue_is_filed_once() -> None:
    # A DuckDB upgrade's new functions fail here until someone decides where they go.
    unfiled = CALLABLE - ALLOWED_FUNCTIONS - REFUSED_NAMES
    assert not unfiled, f"file these in services/gold/allowed_functions.py: {sorted(unfiled)}"
    assert not ALLOWED_FUNCTIONS & REFUSED_NAMES
    assert not (ALLOWED_FUNCTIONS | REFUSED_NAMES) - CALLABLE  # nothing stale either


@pytest.mark.parametrize("name", OFF_THE_LIST)
def test_a_function_off_the_list_is_refused(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_model_sql("m", f"SELECT {sql_identifier(name)}(1) AS v FROM silver", READABLE)
    assert f"calls {name}()" in caught.value.message
    if name not in ALLOWED_TABLE_FUNCTIONS:
        with pytest.raises(InvalidArgument) as caught:
            check_model_sql("m", f"SELECT * FROM {sql_identifier(name)}()", READABLE)
        assert name in caught.value.message


def functions_in(node: Any, found: set[str]) -> set[str]:
    """Names of functions and of table references other than an empty FROM in a tree."""
    if isinstance(node, list):
        for item in node:
            functions_in(item, found)
    elif isinstance(node, dict):
        if node.get("class") in ("FUNCTION", "WINDOW"):
            found.add(str(node["function_name"]).lower())
        is_table_ref = "alias" in node and "sample" in node and "class" not in node
        if is_table_ref and node["type"] != "EMPTY":
            found.add(f"table reference {node['type']}")
        for child in node.values():
            functions_in(child, found)
    return found


@pytest.mark.parametrize(
    ("name", "definition"),
    [(n, d) for n, kind, d in CATALOGUE if kind == "macro" and n in ALLOWED_FUNCTIONS],
)
def test_an_allowed_macro_calls_only_allowed_functions(name: str, definition: str) -> None:
    con = duckdb.connect()
    try:
        row = con.execute("SELECT json_serialize_sql(?)", [f"SELECT {definition}"]).fetchone()
    finally:
        con.close()
    assert row is not None
    tree = json.loads(row[0])
    assert not tree.get("error"), tree
    used = functions_in(tree["statements"], set())
    assert not used - ALLOWED_FUNCTIONS - {"unnest"}, (name, definition)


def test_no_aggregate_is_refused() -> None:
    # list_aggregate(list, 'name') calls an aggregate named in a string the guard never sees.
    aggregates = {name for name, kind, _ in CATALOGUE if kind == "aggregate"}
    assert aggregates <= ALLOWED_FUNCTIONS
    assert "list_aggregate" in ALLOWED_FUNCTIONS


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT x LIKE 'a%', x ILIKE 'b', x NOT LIKE 'c', x SIMILAR TO 'd', x GLOB 'e' FROM silver",
        "SELECT [1, 2], {'a': 1}, map {'k': 1}, row(1, 2), x::INT, 2 ** 3, 5 // 2, 3! FROM silver",
        "SELECT extract(year FROM d), d + INTERVAL 1 DAY, position('a' IN x), trim(x) FROM silver",
        "SELECT list_transform([1, 2], v -> v + 1), list_aggregate([1, 2], 'sum') FROM silver",
        "SELECT x.upper(), lower(x), count(*), count(x) FILTER (WHERE x > 0) FROM silver",
        "SELECT row_number() OVER w, lag(x) OVER w, sum(x) OVER w FROM silver WINDOW w AS ()",
        "SELECT unnest([1, 2]) AS u, nullif(x, 1), coalesce(x, 0), current_date FROM silver",
        "SELECT grouping(x), count(*) FROM silver GROUP BY ROLLUP (x)",
    ],
)
def test_ordinary_syntax_uses_only_allowed_functions(sql: str) -> None:
    assert check_model_sql("m", sql, READABLE)


def delta_extension_functions() -> list[tuple[str, str]]:
    """(name, type) of what DuckDB's delta extension adds to a database (issue 19: its
    delta_scan reads any table's log and files whatever allowed_paths says)."""
    import duckdb_extension_delta

    (path,) = Path(duckdb_extension_delta.__file__).parent.rglob("delta.duckdb_extension")
    con = duckdb.connect(
        config={"autoload_known_extensions": False, "autoinstall_known_extensions": False}
    )
    try:
        con.execute(f"LOAD {sql_literal(str(path))}")
        rows = con.execute(
            "SELECT DISTINCT lower(function_name), function_type FROM duckdb_functions()"
        ).fetchall()
    finally:
        con.close()
    known = {name for name, _, _ in CATALOGUE}
    return sorted((str(name), str(kind)) for name, kind in rows if name not in known)


DELTA_FUNCTIONS = delta_extension_functions()


def test_the_delta_extension_is_not_in_a_builds_catalogue() -> None:
    names = {name for name, _ in DELTA_FUNCTIONS}
    assert {"delta_scan", "delta_list_files"} <= names
    assert not names & {name for name, _, _ in CATALOGUE}


@pytest.mark.parametrize(("name", "kind"), DELTA_FUNCTIONS)
def test_no_function_of_the_delta_extension_is_allowed(name: str, kind: str) -> None:
    assert name not in ALLOWED_FUNCTIONS and name not in ALLOWED_TABLE_FUNCTIONS
    sql = (
        f"SELECT * FROM {sql_identifier(name)}('s3://b/silver/w/j')"
        if kind.startswith("table")
        else f"SELECT {sql_identifier(name)}('s3://b/silver/w/j') AS v FROM silver"
    )
    with pytest.raises(InvalidArgument) as caught:
        check_model_sql("m", sql, READABLE)
    assert name in caught.value.message
