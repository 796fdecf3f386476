"""`history: scd2`: every version of a key, valid from its sequence_by value to the next's.

A version is one (keys, sequence_by) value; rows sharing one are duplicates, deduplicated
as usual (tie_breaker, then the later bronze row). Pure polars, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

VALID_FROM, VALID_TO, IS_CURRENT = "_valid_from", "_valid_to", "_is_current"
HISTORY_COLUMNS = (VALID_FROM, VALID_TO, IS_CURRENT)


def versions(rows: pl.DataFrame, keys: Sequence[str], sequence_by: str) -> pl.DataFrame:
    """One row per version (`rows` holds one per (keys, sequence_by)), with its validity:
    `_valid_from` its sequence value, `_valid_to` the next version's (null for the latest),
    `_is_current` true for the latest. A null sequence value is the earliest."""
    by_key = list(keys)
    ordered = rows.sort([*by_key, sequence_by], nulls_last=False, maintain_order=True)
    position = pl.int_range(pl.len()).over(by_key)
    return ordered.with_columns(
        pl.col(sequence_by).alias(VALID_FROM),
        pl.col(sequence_by).shift(-1).over(by_key).alias(VALID_TO),
        (position == pl.len().over(by_key) - 1).alias(IS_CURRENT),
    )


def history_schema(silver: pl.Schema, sequence_by: str) -> pl.Schema:
    dtype = silver[sequence_by]
    return pl.Schema({**silver, VALID_FROM: dtype, VALID_TO: dtype, IS_CURRENT: pl.Boolean()})
