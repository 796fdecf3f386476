"""The tables a model's SQL reads, from DuckDB's own parse of it: no data, no catalogue.

One query is parsed by DuckDB (so no dialect corner is missed) into its syntax tree
(json_serialize_sql), and the tree is walked with the CTE names in scope at each node.
The gold guard checks every node of that walk; the orchestrator's workflow validation
reads the table names (with their schema and line) to order the models and to refuse an
unknown job, model or dimension when a workflow is applied.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

MAX_SQL_CHARS = 100_000

_NO_LOCATION = 2**64 - 1
_parser_lock = threading.Lock()


class SqlRefused(ValueError):
    """The text is not one readable SELECT; `detail` says why (DuckDB's words for syntax)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Query:
    """One SELECT: its text as it runs (leading lines kept, so DuckDB's line numbers are
    the author's own) and DuckDB's syntax tree of it."""

    text: str
    tree: list[Any]


@dataclass(frozen=True)
class TableName:
    """A table a query names (not one of its CTEs), where the query names it."""

    catalog: str
    schema: str
    name: str
    line: int | None = None
    column: int | None = None

    @property
    def qualified(self) -> str:
        return ".".join(p for p in (self.catalog, self.schema, self.name) if p)

    @property
    def shown(self) -> str:
        """As SQL would name it: `silver."daily-sales"`."""
        return ".".join(quoted(p) for p in (self.catalog, self.schema, self.name) if p)

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line else "the query"


@functools.cache
def _parser() -> duckdb.DuckDBPyConnection:
    """The DuckDB used only to parse (never to run) SQL, one thread at a time (hold
    _parser_lock): an empty in-memory database without external access, opened once
    (opening one costs ~30 ms) and kept for the life of the process."""
    return duckdb.connect(":memory:", config={"enable_external_access": False})


def parse_query(sql: str) -> Query:
    """The query when `sql` holds exactly one SELECT (WITH ... SELECT too); SqlRefused."""
    if len(sql) > MAX_SQL_CHARS:
        raise SqlRefused(f"the SQL is longer than {MAX_SQL_CHARS} characters")
    text = sql.rstrip().rstrip(";").rstrip()
    if not text.strip():
        raise SqlRefused("the SQL is empty")
    with _parser_lock:
        parser = _parser()
        try:
            statements = parser.extract_statements(text)
        except duckdb.Error as exc:
            raise SqlRefused(str(exc)) from None
        kinds = [s.type.name for s in statements]
        if len(statements) != 1:
            raise SqlRefused(
                f"must be one SELECT statement; it holds {len(statements)} ({', '.join(kinds)})"
            )
        if kinds[0] != "SELECT":
            raise SqlRefused(f"must be a SELECT (WITH ... SELECT is fine), not {kinds[0]}")
        row = parser.execute("SELECT json_serialize_sql(?)", [text]).fetchone()
    tree: dict[str, Any] = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        raise SqlRefused(str(tree.get("error_message", "unreadable SQL")))
    return Query(text, list(tree["statements"]))


def walk(
    node: Any, scope: frozenset[str] = frozenset()
) -> Iterator[tuple[dict[str, Any], frozenset[str]]]:
    """Every node of the tree with the (lower-case) CTE names visible there."""
    if isinstance(node, list):
        for item in node:
            yield from walk(item, scope)
        return
    if not isinstance(node, dict):
        return
    cte_map = node.get("cte_map")
    ctes = cte_map.get("map", []) if isinstance(cte_map, dict) else []
    for entry in ctes:
        # A CTE's body sees the CTEs before it, not itself: there DuckDB resolves the CTE's
        # own name like any table (`WITH pg_settings AS (FROM pg_settings)` reads the
        # catalog's). The query, and the CTEs after it, see it.
        yield from walk(entry["value"], scope)
        scope = scope | {str(entry["key"]).lower()}
    yield node, scope
    for key, child in node.items():
        if key == "cte_map":
            continue
        if key == "right" and node.get("type") == "RECURSIVE_CTE_NODE":
            # WITH RECURSIVE t AS (anchor UNION step): only `step` reads t (the rows so
            # far); the anchor resolves t outside the CTE, to the catalog if nothing else.
            yield from walk(child, scope | {str(node.get("cte_name")).lower()})
        else:
            yield from walk(child, scope)


def is_table_ref(node: dict[str, Any]) -> bool:
    # Table references carry an alias and a sample; expressions also have a class, and
    # query nodes (which have a sample too) no alias.
    return "alias" in node and "sample" in node and "class" not in node


def location(text: str, node: dict[str, Any]) -> tuple[int, int] | None:
    """(line, column), 1-based, of a node DuckDB located in `text`."""
    offset = node.get("query_location")
    if not isinstance(offset, int) or offset == _NO_LOCATION:
        return None
    before = text.encode()[:offset].decode(errors="ignore")
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def table_name(query: Query, node: dict[str, Any]) -> TableName:
    line, column = location(query.text, node) or (None, None)
    return TableName(
        catalog=str(node.get("catalog_name") or ""),
        schema=str(node.get("schema_name") or ""),
        name=str(node.get("table_name") or ""),
        line=line,
        column=column,
    )


def tables_read(query: Query) -> list[TableName]:
    """The tables the query names, in the order written; its CTEs are not tables."""
    found = []
    for node, scope in walk(query.tree):
        if is_table_ref(node) and node.get("type") == "BASE_TABLE":
            name = table_name(query, node)
            if name.qualified.lower() not in scope:
                found.append(name)
    return found


def table_references(sql: str) -> list[TableName]:
    return tables_read(parse_query(sql))


def quoted(identifier: str) -> str:
    if identifier.replace("_", "a").isalnum() and not identifier[:1].isdigit():
        return identifier
    return '"' + identifier.replace('"', '""') + '"'
