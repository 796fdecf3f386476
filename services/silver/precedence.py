"""Which of two rows of one key is the later: one definition, as a polars expression and as
the SQL of silver's MERGE, so that an incremental run and a full rebuild pick the same row.

The later row has the larger (sequence_by, tie_breaker, _ingested_at, _source_key,
_row_number), compared column by column; a null is smaller than any value (as the full
rebuild's sort puts nulls first). The bronze columns make the order total: no two bronze
rows share a source key and row number at one ingest time.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import polars as pl

TARGET_SUFFIX = "__t"


def quoted(name: str) -> str:
    """A column name as a SQL identifier (any name a spec allows, quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def newer_or_same(order: Sequence[str]) -> pl.Expr:
    """True when the row's `order` columns are at least those of the matched silver row
    (its columns suffixed with TARGET_SUFFIX)."""
    result = pl.lit(True)
    for name in reversed(order):
        source, target = pl.col(name), pl.col(name + TARGET_SUFFIX)
        greater = (source > target).fill_null(False) | (target.is_null() & source.is_not_null())
        result = greater | (source.eq_missing(target) & result)
    return result


def newer_or_same_sql(order: Sequence[str], source: str = "s", target: str = "t") -> str:
    """The same test as newer_or_same for the MERGE, between aliases `source` and `target`."""
    result = "TRUE"
    for name in reversed(order):
        s, t = f"{source}.{quoted(name)}", f"{target}.{quoted(name)}"
        greater = f"(COALESCE({s} > {t}, FALSE) OR ({t} IS NULL AND {s} IS NOT NULL))"
        # IS NOT DISTINCT FROM binds looser than AND in this SQL dialect: parenthesised.
        result = f"({greater} OR (({s} IS NOT DISTINCT FROM {t}) AND {result}))"
    return result


def same_key_sql(
    keys: Sequence[str], nullable: Collection[str], source: str = "s", target: str = "t"
) -> str:
    """Rows of one key: equal in every key column, a null equal to a null (as in dedupe).
    A column the batch holds no null in is compared with `=`, which matches the same rows
    and lets the MERGE skip silver's files whose statistics rule its keys out."""
    return " AND ".join(
        f"({target}.{quoted(k)} IS NOT DISTINCT FROM {source}.{quoted(k)})"
        if k in nullable
        else f"{target}.{quoted(k)} = {source}.{quoted(k)}"
        for k in keys
    )
