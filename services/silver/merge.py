"""An incremental batch merged into silver: which of its rows the MERGE inserts, which
replace a silver row and which lose to one (worked out before the commit, whose report
says it), unique rules against silver's values, and the MERGE.

A batch row whose key silver holds is a duplicate of that key: of the two, the later
(precedence.py) stays. So every batch row is kept (inserted), quarantined or a duplicate
removed, and silver's rows after the commit are its rows before plus those inserted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl
from deltalake import CommitProperties, DeltaTable

from flowforge import tables
from flowforge.settings import Settings
from flowforge.specs.silver_model import Spec
from services.silver import history, report, transform
from services.silver.bronze_input import arrow_schema, polars_schema
from services.silver.engine import polars_errors, storage_options
from services.silver.passes import Outcome
from services.silver.precedence import (
    TARGET_SUFFIX,
    newer_or_same,
    newer_or_same_sql,
    same_key_sql,
)
from services.silver.refresh import NeedsFullRebuild


@dataclass(frozen=True)
class Merge:
    """What the MERGE gets: the rows (silver's columns), its match and update predicates."""

    rows: pl.DataFrame
    on: str
    update_when: str


class Merger:
    """Plans one batch's MERGE into the loaded silver snapshot."""

    def __init__(
        self,
        settings: Settings,
        silver: DeltaTable,
        ref: tables.TableRef,
        spec: Spec,
        keys: list[str],
        run_id: str,
    ) -> None:
        self.settings, self.silver, self.ref, self.spec = settings, silver, ref, spec
        self.keys, self.run_id = keys, run_id
        dedupe = spec.dedupe
        self.order = [
            c for c in transform.ordering(dedupe.sequence_by, dedupe.tie_breaker) if c not in keys
        ]

    def silver_rows(self, keys: pl.DataFrame, columns: Sequence[str] | None) -> pl.DataFrame:
        """Silver's rows (these columns, None: all) whose key is one of `keys`'s rows."""
        files = tables.version_files(self.silver, self.ref)
        schema = polars_schema(self.silver)
        wanted = list(columns) if columns is not None else list(schema)
        if not files:
            return pl.DataFrame(schema={c: schema[c] for c in wanted})
        rows = pl.scan_parquet(files, storage_options=storage_options(self.settings))
        first = keys.get_column(keys.columns[0])
        if keys.height and not first.null_count() and transform.ranged(first.dtype):
            # Only the row groups (silver's files are cut by key range) that can hold them.
            low, high = pl.lit(first.min(), first.dtype), pl.lit(first.max(), first.dtype)
            rows = rows.filter(pl.col(first.name).is_between(low, high))
        with polars_errors("reading silver's rows of the batch's keys"):
            return (
                rows.select(wanted)
                .join(keys.lazy(), on=list(keys.columns), how="semi", nulls_equal=True)
                .collect(engine="streaming")
            )

    def plan(self, out: Outcome, quarantined_by: Callable[[str], int]) -> Merge:
        assert out.kept is not None and out.rows_per_key is not None
        kept = out.kept.with_columns(out.rows_per_key.alias("__n"))
        if self.spec.dedupe.history:
            return self.plan_versions(out, kept)
        existing = self.silver_rows(kept.select(self.keys).unique(), [*self.keys, *self.order])
        joined = kept.join(
            existing.with_columns(__matched=pl.lit(True)),
            on=self.keys,
            how="left",
            nulls_equal=True,
            suffix=TARGET_SUFFIX,
        ).with_columns(pl.col("__matched").fill_null(False))
        matched = pl.col("__matched")
        effective = joined.filter(~matched | newer_or_same(self.order))
        self.count(
            out,
            joined.select(pl.col("__n") + matched.cast(pl.Int64)),
            joined.filter(~matched).height,
        )
        self.check_uniques(out, effective, quarantined_by)
        # The rows that lose to silver's would change nothing: the MERGE gets the others,
        # and its update predicate says the same again.
        return Merge(
            self.with_run_id(effective, out.schema),
            same_key_sql(self.keys, nullable(effective, self.keys)),
            newer_or_same_sql(self.order),
        )

    def plan_versions(self, out: Outcome, kept: pl.DataFrame) -> Merge:
        """scd2: every version of the batch's keys, silver's and the batch's, deduplicated
        per (key, sequence value) and chained again; the MERGE gets the versions that are
        new or whose values or validity changed."""
        dedupe = self.spec.dedupe
        seq = dedupe.sequence_by
        versions = [*self.keys, seq]
        existing = self.silver_rows(kept.select(self.keys).unique(), None)
        old = existing.drop(*history.HISTORY_COLUMNS, "_silver_run_id").with_columns(
            __existing=pl.lit(True),
            __old_to=existing.get_column(history.VALID_TO),
            __old_current=existing.get_column(history.IS_CURRENT),
        )
        base = [
            c for c in existing.columns if c not in (*history.HISTORY_COLUMNS, "_silver_run_id")
        ]
        new = kept.select(base).with_columns(
            __existing=pl.lit(False),
            __old_to=pl.lit(None, dtype=existing.schema[history.VALID_TO]),
            __old_current=pl.lit(None, dtype=pl.Boolean),
        )
        both = pl.concat([old, new])
        chained = history.versions(
            transform.dedupe(both, versions, seq, dedupe.tie_breaker).kept, self.keys, seq
        )
        changed = chained.filter(
            ~pl.col("__existing")
            | ~pl.col("__old_to").eq_missing(pl.col(history.VALID_TO))
            | (pl.col("__old_current") != pl.col(history.IS_CURRENT))
        )
        known = existing.select(versions).with_columns(__matched=pl.lit(True))
        matched = kept.join(known, on=versions, how="left", nulls_equal=True).get_column(
            "__matched"
        )
        matched = matched.fill_null(False)
        self.count(out, kept.select(pl.col("__n") + matched.cast(pl.Int64)), int((~matched).sum()))
        matching = [*self.keys, history.VALID_FROM]
        return Merge(
            self.with_run_id(changed, out.schema),
            same_key_sql(matching, nullable(changed, matching)),
            newer_or_same_sql(self.order),
        )

    def count(self, out: Outcome, rows_per_key: pl.DataFrame, inserted: int) -> None:
        """The batch's accounting: inserted rows are kept, the other rows of each key
        (the batch's and silver's) are duplicates removed."""
        sizes = rows_per_key.to_series().value_counts(name="keys")
        pairs = [(int(n), int(k)) for n, k in sizes.iter_rows()]
        out.duplicates = report.duplicate_counts(pairs)
        out.duplicates_removed = sum(d.rows_removed for d in out.duplicates)
        out.rows_out = inserted

    def check_uniques(
        self, out: Outcome, effective: pl.DataFrame, quarantined_by: Callable[[str], int]
    ) -> None:
        """A unique rule sees silver's values: a row the batch puts into silver fails when
        another row of silver after the merge holds its value. Dropping such rows would
        also drop silver's, and dropped rows may be unique again once their key changes:
        both need all of silver, so the refine rebuilds instead."""
        counted = []
        for rule in transform.unique_checks(self.spec.expectations):
            column = rule.column
            mine = effective.filter(pl.col(column).is_not_null())
            wanted = list(dict.fromkeys([*self.keys, column]))
            others = self.silver_rows(mine.select(column).unique(), wanted)
            others = others.join(mine.select(self.keys), on=self.keys, how="anti", nulls_equal=True)
            held = pl.concat([mine.select(column), others.select(column)])
            repeated = held.group_by(column).len("n").filter(pl.col("n") > 1).get_column(column)
            failed = mine.filter(pl.col(column).is_in(repeated.implode())).height
            if rule.action == "drop" and failed:
                raise NeedsFullRebuild(
                    f"unique rule {rule.rule_id!r} drops rows whose {column!r} silver or this "
                    "batch holds twice, silver's rows too"
                )
            if rule.action == "drop" and quarantined_by(rule.rule_id):
                raise NeedsFullRebuild(
                    f"unique rule {rule.rule_id!r} dropped rows since the last rebuild, which "
                    "may be unique now"
                )
            counted.append(report.Counted(rule, effective.height, failed))
        report.fail_if_breached(counted)
        out.quality += counted
        out.warnings += report.warn_messages(counted)

    def with_run_id(self, rows: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
        return rows.with_columns(_silver_run_id=pl.lit(self.run_id)).select(list(schema))


def nullable(rows: pl.DataFrame, columns: Sequence[str]) -> set[str]:
    return {c for c in columns if rows.get_column(c).null_count()}


def execute(
    settings: Settings,
    silver: DeltaTable,
    ref: tables.TableRef,
    merge: Merge,
    properties: CommitProperties,
) -> None:
    """The MERGE, in one commit; a MERGE that changes nothing commits nothing, so then the
    run commits an empty append (its record: run id, report, what it read)."""
    before = silver.version()
    with tables.delta_errors(f"merging into {ref}", ref):
        if merge.rows.height:
            source = merge.rows.to_arrow().cast(arrow_schema(silver))
            (
                silver.merge(
                    source,
                    predicate=merge.on,
                    source_alias="s",
                    target_alias="t",
                    streamed_exec=False,  # the batch is in memory: its key range prunes files
                    commit_properties=properties,
                )
                .when_matched_update_all(predicate=merge.update_when)
                .when_not_matched_insert_all()
                .execute()
            )
        if silver.version() == before:
            silver.create_write_transaction(
                [], mode="append", schema=arrow_schema(silver), commit_properties=properties
            )
