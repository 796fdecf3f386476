"""Model SQL is untrusted: only one read-only SELECT over this job's views gets through.

DuckDB parses the text itself (so no dialect corner is missed) and its syntax tree is
walked: every table a query names must be `silver`, a `dim_*` view the spec lists or a
CTE in scope; SHOW/DESCRIBE and table functions but three are refused, and every function
called must be on the allowlist in allowed_functions.py. The locked-down connection (see
engine.py) is the second line of defence.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from typing import Any

import duckdb

from flowforge.errors import InvalidArgument
from services.gold.allowed_functions import ALLOWED_TABLE_FUNCTIONS, refusal

MAX_SQL_CHARS = 100_000

ALLOWED_TABLE_REFS = frozenset(
    {"BASE_TABLE", "SUBQUERY", "JOIN", "EXPRESSION_LIST", "EMPTY", "TABLE_FUNCTION", "PIVOT"}
)
_NO_LOCATION = 2**64 - 1
_parser_lock = threading.Lock()


@functools.cache
def _parser() -> duckdb.DuckDBPyConnection:
    """The DuckDB used only to parse (never to run) model SQL, one thread at a time (hold
    _parser_lock): an empty in-memory database without external access, opened once
    (opening one costs ~30 ms a model) and kept for the life of the process."""
    return duckdb.connect(":memory:", config={"enable_external_access": False})


def check_model_sql(model: str, sql: str, readable: set[str]) -> str:
    """Returns the model's query when it may run; raises InvalidArgument naming the model.

    `readable` holds the view names the query may read (lower case): silver and dim_*.
    """
    if len(sql) > MAX_SQL_CHARS:
        raise InvalidArgument(f"model {model!r}: the SQL is longer than {MAX_SQL_CHARS} characters")
    # Leading lines stay: every line and column DuckDB reports is then the model's own.
    query = sql.rstrip().rstrip(";").rstrip()
    if not query.strip():
        raise InvalidArgument(f"model {model!r}: the SQL is empty")
    with _parser_lock:
        parser = _parser()
        try:
            statements = parser.extract_statements(query)
        except duckdb.Error as exc:
            raise InvalidArgument(f"model {model!r}: {exc}") from None
        kinds = [s.type.name for s in statements]
        if len(statements) != 1:
            raise InvalidArgument(
                f"model {model!r} must be one SELECT statement; it holds {len(statements)} "
                f"({', '.join(kinds)})"
            )
        if kinds[0] != "SELECT":
            raise InvalidArgument(
                f"model {model!r} must be a SELECT (WITH ... SELECT is fine), not {kinds[0]}"
            )
        row = parser.execute("SELECT json_serialize_sql(?)", [query]).fetchone()
    tree = json.loads(row[0]) if row else {"error": True, "error_message": "unreadable SQL"}
    if tree.get("error"):
        raise InvalidArgument(f"model {model!r}: {tree.get('error_message', 'unreadable SQL')}")
    for node, problem in refusals(tree["statements"], frozenset(), frozenset(readable)):
        raise InvalidArgument(f"model {model!r}{where(query, node)}: {problem}")
    return query


def refusals(
    node: Any, scope: frozenset[str], readable: frozenset[str]
) -> Iterator[tuple[dict[str, Any], str]]:
    """Every table reference or function in the tree that a model may not use."""
    if isinstance(node, list):
        for item in node:
            yield from refusals(item, scope, readable)
        return
    if not isinstance(node, dict):
        return
    ctes = node.get("cte_map", {}).get("map", []) if isinstance(node.get("cte_map"), dict) else []
    for entry in ctes:
        # A CTE's body sees the CTEs before it, not itself: there DuckDB resolves the CTE's
        # own name like any table (`WITH pg_settings AS (FROM pg_settings)` reads the
        # catalog's). The query, and the CTEs after it, see it.
        yield from refusals(entry["value"], scope, readable)
        scope = scope | {str(entry["key"]).lower()}
    if is_table_ref(node):
        problem = table_ref_problem(node, scope, readable)
        if problem:
            yield node, problem
    if node.get("class") in ("FUNCTION", "WINDOW"):
        problem = function_problem(node)
        if problem:
            yield node, problem
    for key, child in node.items():
        if key == "cte_map":
            continue
        if key == "right" and node.get("type") == "RECURSIVE_CTE_NODE":
            # WITH RECURSIVE t AS (anchor UNION step): only `step` reads t (the rows so
            # far); the anchor resolves t outside the CTE, to the catalog if nothing else.
            yield from refusals(child, scope | {str(node.get("cte_name")).lower()}, readable)
        else:
            yield from refusals(child, scope, readable)


def function_problem(node: dict[str, Any]) -> str | None:
    name = str(node.get("function_name", "?"))
    if node.get("catalog"):
        # `x.upper()` arrives with schema `x` (a method call), so only a catalog (three-part
        # name) marks a function looked up somewhere else than DuckDB's own.
        return f"calls {node['catalog']}.{node.get('schema')}.{name}(): call functions by name"
    reason = refusal(name)
    if reason is None:
        return None
    return f"calls {name}(), which models may not use: {reason}"


def is_table_ref(node: dict[str, Any]) -> bool:
    # Table references carry an alias and a sample; expressions also have a class, and
    # query nodes (which have a sample too) no alias.
    return "alias" in node and "sample" in node and "class" not in node


def table_ref_problem(
    ref: dict[str, Any], scope: frozenset[str], readable: frozenset[str]
) -> str | None:
    kind = ref["type"]
    if kind not in ALLOWED_TABLE_REFS:
        shown = {"SHOW_REF": "SHOW, DESCRIBE or SUMMARIZE"}.get(kind, kind)
        return f"uses {shown}, which models may not use"
    if kind == "TABLE_FUNCTION":
        function = ref.get("function", {})
        name = str(function.get("function_name", "?"))
        if name.lower() in ALLOWED_TABLE_FUNCTIONS and not function.get("catalog"):
            return None
        return (
            f"calls the table function {name}(): models may read only `silver` and the "
            f"dim_* views (table functions reach files, URLs and settings); allowed: "
            f"{', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}"
        )
    if kind != "BASE_TABLE":
        return None
    table = str(ref.get("table_name", ""))
    qualified = ".".join(p for p in (ref.get("catalog_name"), ref.get("schema_name"), table) if p)
    if qualified == table and (table.lower() in scope or table.lower() in readable):
        return None
    if table.lower().startswith("dim_") and qualified == table:
        return (
            f"reads {table}, but the spec's dimensions do not list {table[4:]!r} "
            "(add it to dimensions)"
        )
    return (
        f"reads {qualified!r}: a model may read only `silver`, the dim_* views of the "
        "dimensions the spec lists and its own CTEs"
    )


def where(sql: str, node: dict[str, Any]) -> str:
    """' (line L, column C)' for a node DuckDB located, else ''."""
    offset = node.get("query_location")
    if not isinstance(offset, int) or offset == _NO_LOCATION:
        return ""
    before = sql.encode()[:offset].decode(errors="ignore")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return f" (line {line}, column {column})"
