"""The two passes of one refine, and what they produce before it is committed.

Pass one, streaming and in bounded memory: cast and check every bronze row; rejected rows
go to the quarantine, counts to the quality report, kept rows to memory when they fit or
else to local files, one per hash bucket of the dedupe key. Pass two, one bucket at a
time: latest wins per key (with `history: scd2`, per key and sequence value, then each
version's validity), then unique rules over all kept rows. A bucket is small enough for
`silver_memory_limit_mb`, so memory stays bounded whatever the input size.

A full rebuild stages the silver rows into the table's folder bucket by bucket; an
incremental refine keeps its batch's rows (one bucket, or it rebuilds instead) for the
MERGE, which also checks unique rules against silver (merge.py).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from flowforge import casting
from flowforge.errors import FailedPrecondition
from flowforge.progress import Reporter, ignore
from flowforge.reports import DuplicateCount
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.silver_columns import CARRIED_AUDIT
from flowforge.specs.silver import check_types, with_types
from flowforge.specs.silver_model import ColumnRule, Spec
from services.silver import history, report, transform
from services.silver.bronze_input import Batch
from services.silver.engine import Workspace, polars_errors
from services.silver.quarantine import quarantine_frame
from services.silver.refresh import NeedsFullRebuild
from services.silver.staging import Staging

if TYPE_CHECKING:
    from services.silver.refine import RefinePlan

# In-memory size of bronze rows relative to their Parquet bytes, and how many copies of a
# bucket a dedupe holds at its peak (rows, sorted keys, kept rows, slack): measured on the
# generated customers data (bench/silver.py), rounded up.
MEMORY_PER_PARQUET_BYTE = 8
DEDUPE_COPIES = 4
# The first pass keeps one open file per bucket, each buffering up to one row group.
MAX_BUCKETS = 256
BUCKET_ROW_GROUP = 8192


@dataclass
class Outcome:
    """What one refine produced, before it is committed."""

    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    duplicates_removed: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    quality: list[report.Counted] = field(default_factory=list)
    duplicates: list[DuplicateCount] = field(default_factory=list)
    schema: pl.Schema = field(default_factory=pl.Schema)
    warnings: list[str] = field(default_factory=list)
    # Per source column, when types are inferred: whether it has a value and the types
    # every value parses as, so that the next incremental run infers over all of bronze.
    inference: dict[str, Any] = field(default_factory=dict)
    # Incremental: the batch's rows left after dedupe, before unique rules and the MERGE,
    # and how many of the batch's rows shared each one's key.
    kept: pl.DataFrame | None = None
    rows_per_key: pl.Series | None = None
    kept_before_dedupe: int = 0

    @property
    def columns(self) -> list[tuple[str, str]]:
        return [(name, str(dtype)) for name, dtype in self.schema.items()]


class Refinery:
    """The two passes of one refine, with what they share. Without `silver` staging the
    refine is incremental: the kept rows stay in memory for the MERGE."""

    def __init__(
        self,
        settings: Settings,
        plan: RefinePlan,
        batch: Batch,
        sources: list[str],
        work: Workspace,
        deadline: Deadline,
        quarantine: Staging,
        silver: Staging | None,
        progress: Reporter = ignore,
    ) -> None:
        self.progress = progress
        self.settings, self.plan, self.batch, self.sources = settings, plan, batch, sources
        self.work, self.deadline, self.quarantine, self.silver = work, deadline, quarantine, silver
        self.spec = plan.spec
        self.out = Outcome()
        self.cuts: pl.Series | None = None
        self.range_column = ""

    def run(
        self,
        columns: tuple[ColumnRule, ...],
        previous: tuple[str, pl.Schema] | None,
        inferred_before: dict[str, Any] | None,
    ) -> Outcome:
        """`previous`: the run id and schema of silver's last commit."""
        if self.silver is None and self.bucket_count() > 1:
            raise NeedsFullRebuild(
                f"bronze's changes ({self.batch.size_bytes >> 20} MB of Parquet) are more than "
                "FLOWFORGE_SILVER_MEMORY_LIMIT_MB holds for a merge"
            )
        source = self.batch.rows
        if any(c.type is None for c in columns):
            columns = self.infer_types(source, columns, inferred_before)
        self.out.schema = self.silver_schema(source, columns)
        if previous is not None:
            self.check_drift(*previous)
        self.deadline.check("casting bronze rows")
        size = self.batch.size_bytes
        self.progress("checking", bytes_read=0, bytes_total=size, rows=0)
        buckets = self.first_pass(source, columns)
        self.progress(bytes_read=size, rows=0, rows_total=self.out.kept_before_dedupe)
        self.deadline.check("removing duplicates")
        self.second_pass(buckets, columns)
        self.out.rows_rejected = sum(f.rows for f in self.quarantine.files)
        if self.silver is not None:
            self.out.rows_out = sum(f.rows for f in self.silver.files)
        report.fail_if_mostly_quarantined(
            self.out.rows_in,
            self.out.rejected_by_reason,
            self.out.quality,
            self.spec.max_bad_percent,
        )
        return self.out

    def check_drift(self, previous_run: str, schema: pl.Schema) -> None:
        old = [(name, str(dtype)) for name, dtype in schema.items()]
        if self.silver is None and old != self.out.columns:
            changes = report.drift_summary(
                report.schema_drift(*transform.drift(old, self.out.columns))
            )
            raise NeedsFullRebuild(f"the silver columns change ({changes or 'reordered'})")
        if self.spec.fail_on_schema_drift:
            report.fail_on_drift(previous_run, old, self.out.columns)

    def infer_types(
        self,
        source: pl.LazyFrame,
        columns: tuple[ColumnRule, ...],
        before: dict[str, Any] | None,
    ) -> tuple[ColumnRule, ...]:
        """Each column's type from every value: this batch's, and (incremental) what the
        earlier runs since the last rebuild recorded of theirs."""
        if not columns:
            return columns
        if self.silver is None and before is None:
            raise NeedsFullRebuild("silver's last commit does not record its inferred types")
        with polars_errors("inferring column types"):
            found = casting.gather_evidence(source, columns)
        kinds = []
        for column, seen in zip(columns, found, strict=True):
            earlier = (before or {}).get(column.source)
            if earlier is not None:
                seen = casting.Evidence.from_dict(earlier).merged(seen)
            self.out.inference[column.source] = seen.as_dict()
            inferred = casting.column_type(column.target, seen)
            if inferred.warning:
                self.out.warnings.append(inferred.warning)
            kinds.append(inferred.type)
        typed = with_types(columns, kinds)
        check_types(self.spec, typed)
        return typed

    def silver_schema(self, source: pl.LazyFrame, columns: tuple[ColumnRule, ...]) -> pl.Schema:
        typed = transform.typed_frame(source, self.sources, columns, self.spec.expectations)
        schema = typed.select(
            *(c.target for c in columns), *(s for _, s in CARRIED_AUDIT)
        ).collect_schema()
        silver = pl.Schema({**schema, "_silver_run_id": pl.String()})
        if self.spec.dedupe.history:
            return history.history_schema(silver, self.spec.dedupe.sequence_by)
        return silver

    def keys(self, columns: tuple[ColumnRule, ...]) -> list[str]:
        return self.record_keys(self.spec, columns)

    @staticmethod
    def record_keys(spec: Spec, columns: tuple[ColumnRule, ...]) -> list[str]:
        """What identifies a record: the dedupe keys, else every silver column."""
        return list(spec.dedupe.keys) or [c.target for c in columns] or ["_row_hash"]

    def first_pass(
        self, source: pl.LazyFrame, columns: tuple[ColumnRule, ...]
    ) -> list[Path | pl.DataFrame]:
        """Casts and checks every row once: quarantine, counts and kept rows, in memory
        when they fit, otherwise in local files, one per hash bucket of the dedupe key."""
        spec, run_id = self.spec, self.plan.run_id
        uniques = transform.unique_checks(spec.expectations)
        keep_raw = any(u.action == "drop" for u in uniques)
        typed = transform.typed_frame(source, self.sources, columns, spec.expectations, keep_raw)
        implicit = transform.implicit_checks(columns)
        rules = transform.row_checks(spec.expectations)
        dropping = [*implicit, *(r for r in rules if r.action == "drop")]
        quarantine = quarantine_frame(typed, "__reject", dropping, self.sources, columns, run_id)
        kept = [*(c.target for c in columns), *(s for _, s in CARRIED_AUDIT)]
        if keep_raw:
            kept += [f"__raw{i}" for i in range(len(self.sources))]
        keys = self.keys(columns)
        count = self.bucket_count()
        rows = typed.filter(pl.col("__reject").is_null()).select(kept)
        buckets: list[Path] = []

        def note_bucket(args: Any) -> None:
            buckets.extend(Path(p.path) for p in args.paths if p.num_rows)

        if count == 1:  # everything fits: keep the rows in memory for the second pass
            kept_rows: pl.LazyFrame = rows
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PartitionBy is marked unstable
                target = pl.PartitionBy(self.work.path("kept"), key="__bucket", include_key=False)
            kept_rows = rows.with_columns(__bucket=transform.bucket(keys, count)).sink_parquet(
                target,
                compression="lz4",
                row_group_size=BUCKET_ROW_GROUP,
                maintain_order=False,  # dedupe orders rows itself
                lazy=True,
                mkdir=True,
                sinked_paths_callback=note_bucket,
            )
        with polars_errors("casting and checking bronze rows"):
            results = pl.collect_all(
                [
                    self.quarantine.sink(quarantine, self.quarantine.next_key()),
                    kept_rows,
                    transform.quality_counts(typed, columns, spec.expectations, spec.dedupe.keys),
                ],
                engine="streaming",
            )
        self.quarantine.drop_empty()
        self.count_first_pass(results[2], implicit, rules)
        if count == 1:
            return [results[1]]
        return sorted(buckets)  # type: ignore[return-value]

    def count_first_pass(
        self, counts: pl.DataFrame, implicit: list[transform.Check], rules: list[transform.Check]
    ) -> None:
        totals = counts.drop("__reject").sum().row(0, named=True) if counts.height else {}
        rows = int(totals.get("__rows") or 0)
        expected = self.batch.expected_rows
        if expected is not None and rows != expected:
            raise FailedPrecondition(
                f"silver read {rows} bronze rows but bronze's log says its files hold "
                f"{expected}: bronze changed while silver read it; retry"
            )
        self.out.rows_in = rows
        cast_failed = int(totals.get("__cast_failed") or 0)
        self.out.quality = [report.Counted(c, rows, int(totals.get(c.flag) or 0)) for c in implicit]
        self.out.quality += [
            report.Counted(r, rows - cast_failed, int(totals.get(r.flag) or 0)) for r in rules
        ]
        report.fail_if_breached(self.out.quality)
        self.out.warnings += report.warn_messages(self.out.quality)
        self.reasons = Counter[str](
            {r: int(n) for r, n in counts.select("__reject", "__rows").iter_rows() if r is not None}
        )
        self.out.rejected_by_reason = dict(self.reasons)
        self.out.kept_before_dedupe = rows - sum(self.reasons.values())
        null_keys = int(totals.get("__null_keys") or 0)
        if null_keys:
            self.out.warnings.append(
                f"{null_keys} rows have a null dedupe key ({', '.join(self.spec.dedupe.keys)}); "
                "rows whose keys are equal, nulls included, were deduplicated together"
            )

    def bucket_count(self) -> int:
        needed = self.batch.size_bytes * MEMORY_PER_PARQUET_BYTE * DEDUPE_COPIES
        budget = max(self.settings.silver_memory_limit_mb, 1) << 20
        return min(max(1, math.ceil(needed / budget)), MAX_BUCKETS)

    def second_pass(
        self, buckets: list[Path | pl.DataFrame], columns: tuple[ColumnRule, ...]
    ) -> None:
        """Latest wins per key, one bucket at a time; unique rules over all kept rows."""
        spec, dedupe = self.spec, self.spec.dedupe
        keys = self.keys(columns)
        self.range_column = keys[0]
        # scd2: a record is one version of a key; a bucket holds every version of its keys.
        records = [*keys, dedupe.sequence_by] if dedupe.history else keys
        uniques = transform.unique_checks(spec.expectations)
        key_rows: list[pl.DataFrame] = []
        ties = 0
        kept_files: list[Path] = []
        parts = len(buckets)  # value-count partitions per unique rule (spilled, see below)
        deduplicated = 0
        for index in range(len(buckets)):
            self.deadline.check("removing duplicates")
            self.progress(f"deduplicating (bucket {index + 1} of {parts})")
            bucket = buckets.pop(0)  # no reference left: the rows go once deduplicated
            with polars_errors("removing duplicates"):
                rows = bucket if isinstance(bucket, pl.DataFrame) else pl.read_parquet(bucket)
                found = transform.dedupe(rows, records, dedupe.sequence_by, dedupe.tie_breaker)
            deduplicated += rows.height
            del rows
            if isinstance(bucket, Path):
                bucket.unlink()
            del bucket
            ties += found.ties
            if self.silver is None:  # incremental: one bucket, merged by merge.py
                self.out.kept, self.out.rows_per_key = found.kept, found.rows_per_key
                continue
            key_rows.append(found.key_rows)
            kept = found.kept
            if dedupe.history:
                kept = history.versions(kept, keys, dedupe.sequence_by)
            if uniques:
                for u in uniques:
                    self.spill_value_counts(kept, u, parts, index)
                kept_files.append(self.work.path(f"kept-{index:05d}.parquet"))
                kept.write_parquet(kept_files[-1], compression="lz4")
            else:
                self.write_silver(kept)
            self.progress(rows=deduplicated)
        self.note_ties(ties)
        if self.silver is None:
            return
        self.count_duplicates(key_rows)
        if uniques:
            self.check_uniques(uniques, parts, kept_files, columns)

    def note_ties(self, ties: int) -> None:
        dedupe = self.spec.dedupe
        if ties:
            decided = (
                f"the tie_breaker {dedupe.tie_breaker!r}" if dedupe.tie_breaker else "bronze order"
            )
            self.out.warnings.append(
                f"{ties} keys ({', '.join(dedupe.keys)}) had rows tied on {dedupe.sequence_by!r}; "
                f"{decided} decided which one was kept"
            )

    def count_duplicates(self, key_rows: list[pl.DataFrame]) -> None:
        merged = pl.concat(key_rows).group_by("n").agg(pl.col("keys").sum()) if key_rows else None
        pairs = [(int(n), int(k)) for n, k in merged.iter_rows()] if merged is not None else []
        self.out.duplicates = report.duplicate_counts(pairs)
        self.out.duplicates_removed = sum(d.rows_removed for d in self.out.duplicates)
        self.kept_rows = self.out.kept_before_dedupe - self.out.duplicates_removed

    def spill_value_counts(
        self, kept: pl.DataFrame, rule: transform.Check, parts: int, bucket: int
    ) -> None:
        """Writes a bucket's value counts for a unique rule to disk, split by the value's
        hash into `parts` partitions, so that adding them up later holds one partition's
        distinct values in memory at a time, not the whole column's."""
        counts = transform.duplicated_values(kept, rule.column)
        partition = (pl.col(rule.column).hash() % parts).alias("__part")
        for (part,), frame in counts.with_columns(partition).group_by("__part"):
            path = self.work.path(f"values-{rule.flag}-{part:05d}-{bucket:05d}.parquet")
            frame.drop("__part").write_parquet(path, compression="lz4")

    def repeated_values(
        self, rule: transform.Check, parts: int, dtype: pl.DataType
    ) -> tuple[pl.Series, int]:
        """The values of a unique rule's column that more than one kept row holds, and how
        many rows hold them; one partition of value counts in memory at a time."""
        repeated, rows = [], 0
        for part in range(parts):
            self.deadline.check("checking unique rules")
            files = sorted(self.work.root.glob(f"values-{rule.flag}-{part:05d}-*.parquet"))
            if not files:
                continue
            values = pl.concat([pl.read_parquet(f) for f in files]).group_by(rule.column)
            found = values.agg(pl.col("n").sum()).filter(pl.col("n") > 1)
            repeated.append(found.get_column(rule.column))
            rows += int(found.get_column("n").sum() or 0)
            for path in files:
                path.unlink()
        if not repeated:
            return pl.Series(rule.column, [], dtype=dtype), 0
        return pl.concat(repeated), rows

    def check_uniques(
        self,
        uniques: list[transform.Check],
        parts: int,
        kept_files: list[Path],
        columns: tuple[ColumnRule, ...],
    ) -> None:
        repeated: dict[str, pl.Series] = {}
        counted = []
        for u in uniques:
            dtype = self.out.schema[u.column]
            repeated[u.flag], rows = self.repeated_values(u, parts, dtype)
            counted.append(report.Counted(u, self.kept_rows, rows))
        report.fail_if_breached(counted)
        self.out.quality += counted
        self.out.warnings += report.warn_messages(counted)
        dropping = [u for u in uniques if u.action == "drop"]
        self.progress("writing")
        for path in kept_files:
            self.deadline.check("checking unique rules")
            kept = (
                pl.read_parquet(path)
                .with_columns(
                    (
                        pl.col(u.column).is_not_null()
                        & pl.col(u.column).is_in(repeated[u.flag].implode())
                    ).alias(u.flag)
                    for u in dropping
                )
                .with_columns(__ureject=transform.first_failed(dropping))
            )
            rejected = kept.filter(pl.col("__ureject").is_not_null())
            if rejected.height:
                self.reasons.update(dict(rejected.group_by("__ureject").len().iter_rows()))
                frame = quarantine_frame(
                    rejected.lazy(), "__ureject", dropping, self.sources, columns, self.plan.run_id
                ).collect()
                self.quarantine.write(frame, "writing the quarantine")
            self.write_silver(kept.filter(pl.col("__ureject").is_null()))
        self.out.rejected_by_reason = dict(self.reasons)

    def write_silver(self, kept: pl.DataFrame) -> None:
        """Writes a bucket's rows, one file per range of the first key column (ranges cut
        from the first bucket written, a random sample of all keys by their hash)."""
        assert self.silver is not None
        frame = kept.with_columns(_silver_run_id=pl.lit(self.plan.run_id)).select(
            list(self.out.schema)
        )
        column = frame.get_column(self.range_column)
        if self.cuts is None:
            self.cuts = transform.range_cuts(column)
        if not self.cuts.len():
            self.silver.write(frame, "writing silver")
            return
        ranged = frame.with_columns(transform.range_index(self.cuts, column))
        for part in ranged.partition_by("__range", maintain_order=True, include_key=False):
            self.silver.write(part, "writing silver")
