"""A model's columns as a Delta table can hold them: each type stored exactly, or as text.

Delta has no unsigned integers, no TIME, INTERVAL, UUID, BIT or UNION, and timestamps of
microseconds only (delta-rs would take uint8 for a signed byte, and readers refuse a
nanosecond table). A model's column of such a type is cast as it is written: unsigned
integers to the next signed type (exact), second and millisecond timestamps to TIMESTAMP
(exact), nanosecond ones to TIMESTAMP (microseconds, said in a warning), the others to
their text (said in a warning). Such a type inside a LIST, STRUCT or MAP is refused with
the column's name: a cast of its own in the model says what the author wants kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowforge.duckdb_s3 import sql_identifier
from flowforge.errors import InvalidArgument

EXACT = {
    "utinyint": "SMALLINT",
    "usmallint": "INTEGER",
    "uinteger": "BIGINT",
    "ubigint": "DECIMAL(20,0)",
    "timestamp_s": "TIMESTAMP",
    "timestamp_ms": "TIMESTAMP",
}
NARROWED = {"timestamp_ns": ("TIMESTAMP", "nanoseconds are cut to microseconds")}
AS_TEXT = {"time", "time with time zone", "interval", "uuid", "bit", "union"}
NESTED = {"struct", "list", "map", "array"}


@dataclass(frozen=True)
class Stored:
    """How the model's query is wrapped for writing: `select` before it, `close` after it
    (empty when every column is stored as it is), the stored types that changed, and why."""

    select: str = ""
    close: str = ""
    types: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def storable(model: str, names: list[str], types: list[Any]) -> Stored:
    """`types` are DuckDBPyType objects of the model's relation (their `id`, `children`)."""
    casts: dict[str, str] = {}
    warnings = []
    for name, type_ in zip(names, types, strict=True):
        kind = type_.id
        if kind in EXACT:
            casts[name] = EXACT[kind]
        elif kind in NARROWED:
            casts[name], why = NARROWED[kind]
            warnings.append(
                f"model {model!r}: column {name!r} ({type_}) stored as {casts[name]}: {why}"
            )
        elif kind in AS_TEXT:
            casts[name] = "VARCHAR"
            warnings.append(
                f"model {model!r}: column {name!r} ({type_}) stored as text (VARCHAR): "
                "a Delta table has no such type"
            )
        elif kind in NESTED and (inner := unstorable(type_)) is not None:
            raise InvalidArgument(
                f"model {model!r}: column {name!r} is {type_}, which holds {inner}: a Delta "
                "table cannot hold that type; cast it in the model (to a signed integer, "
                "TIMESTAMP or VARCHAR)"
            )
    if not casts:
        return Stored()
    replaced = ", ".join(
        f"CAST({sql_identifier(n)} AS {t}) AS {sql_identifier(n)}" for n, t in casts.items()
    )
    # The model's text still starts on the statement's second line (see relocate()).
    return Stored(
        select=f"SELECT * REPLACE ({replaced}) FROM (",
        close=")",
        types=casts,
        warnings=warnings,
    )


def unstorable(type_: Any) -> str | None:
    """The first type inside a nested type that a Delta table cannot hold, if any."""
    for _, child in type_.children:
        if not hasattr(child, "id"):
            continue  # an ARRAY's size, a DECIMAL's precision
        if child.id in EXACT or child.id in NARROWED or child.id in AS_TEXT:
            return str(child)
        if child.id in NESTED and (inner := unstorable(child)) is not None:
            return inner
    return None
