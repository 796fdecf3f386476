"""Model SQL is untrusted: only one read-only SELECT over the build's own views gets through.

DuckDB parses the text itself (flowforge/sqlrefs.py) and its syntax tree is walked: every
table a query names must be one of the views the build holds (`silver`, a `dim_*` view the
spec lists, a workflow's `silver.<job>` and `gold.<model>`) or a CTE in scope; SHOW/DESCRIBE
and table functions but three are refused, and every function called must be on the
allowlist in allowed_functions.py. The locked-down connection (see engine.py) is the
second line of defence.
"""

from __future__ import annotations

from typing import Any

from flowforge.errors import InvalidArgument
from flowforge.sqlrefs import (
    MAX_SQL_CHARS,
    Query,
    SqlRefused,
    is_table_ref,
    location,
    parse_query,
    table_name,
    walk,
)
from services.gold.allowed_functions import ALLOWED_TABLE_FUNCTIONS, refusal

__all__ = ["MAX_SQL_CHARS", "check_model_sql"]

ALLOWED_TABLE_REFS = frozenset(
    {"BASE_TABLE", "SUBQUERY", "JOIN", "EXPRESSION_LIST", "EMPTY", "TABLE_FUNCTION", "PIVOT"}
)


def check_model_sql(model: str, sql: str, readable: set[str]) -> str:
    """Returns the model's query when it may run; raises InvalidArgument naming the model.

    `readable` holds the views the query may read, lower case and schema-qualified where
    they live in a schema: `silver`, `dim_countries`, `silver.orders`, `gold.by_month`.
    """
    try:
        query = parse_query(sql)
    except SqlRefused as exc:
        raise InvalidArgument(f"model {model!r}: {exc.detail}") from None
    for node, problem in refusals(query, frozenset(readable)):
        at = location(query.text, node)
        where = f" (line {at[0]}, column {at[1]})" if at else ""
        raise InvalidArgument(f"model {model!r}{where}: {problem}")
    return query.text


def refusals(query: Query, readable: frozenset[str]) -> list[tuple[dict[str, Any], str]]:
    """Every table reference or function in the tree that a model may not use."""
    found = []
    for node, scope in walk(query.tree):
        problem = None
        if is_table_ref(node):
            problem = table_ref_problem(query, node, scope, readable)
        elif node.get("class") in ("FUNCTION", "WINDOW"):
            problem = function_problem(node)
        if problem:
            found.append((node, problem))
    return found


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


def table_ref_problem(
    query: Query, ref: dict[str, Any], scope: frozenset[str], readable: frozenset[str]
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
            f"calls the table function {name}(): models may read only their input views "
            f"(table functions reach files, URLs, settings and other tables' logs); allowed: "
            f"{', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}"
        )
    if kind != "BASE_TABLE":
        return None
    table = table_name(query, ref)
    qualified = table.qualified.lower()
    if qualified in readable or (qualified == table.name.lower() and qualified in scope):
        return None
    if table.name.lower().startswith("dim_") and qualified == table.name.lower():
        return (
            f"reads {table.name}, but the spec's dimensions do not list {table.name[4:]!r} "
            "(add it to dimensions)"
        )
    return f"reads {table.qualified!r}: a model may read only {readable_text(readable)}"


def readable_text(readable: frozenset[str]) -> str:
    if any("." in name for name in readable):
        return (
            "silver.<job> of the workflow's jobs, gold.<model> of its other models, the "
            "dim_* views of the dimensions the spec lists and its own CTEs"
        )
    return "`silver`, the dim_* views of the dimensions the spec lists and its own CTEs"
