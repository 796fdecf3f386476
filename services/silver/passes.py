"""The two passes of one refine, and what they produce before it is committed.

Pass one, streaming and in bounded memory: cast and check every bronze row; rejected rows
go to the quarantine, counts to the quality report, kept rows to memory when they fit or
else to local files, one per hash bucket of the dedupe key. Pass two, one bucket at a
time: latest wins per key, then unique rules over all kept rows. A bucket is small enough
for `silver_memory_limit_mb`, so memory stays bounded whatever the input size.
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
from flowforge.manifest import Committed, ManifestObject
from flowforge.reports import DuplicateCount
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.silver_columns import CARRIED_AUDIT
from flowforge.specs.silver import check_types, with_types
from flowforge.specs.silver_model import ColumnRule
from flowforge.storage import ObjectStore, s3_url
from services.silver import report, transform
from services.silver.bronze import BronzeInput
from services.silver.engine import Workspace, polars_errors, storage_options
from services.silver.quarantine import quarantine_frame

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
    schema: list[tuple[str, str]] = field(default_factory=list)
    data_objects: list[ManifestObject] = field(default_factory=list)
    quarantine_objects: list[ManifestObject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Refinery:
    """The two passes of one refine, with what they share."""

    def __init__(
        self,
        store: ObjectStore,
        settings: Settings,
        plan: RefinePlan,
        bronze: BronzeInput,
        sources: list[str],
        work: Workspace,
        deadline: Deadline,
    ) -> None:
        self.store, self.settings, self.plan = store, settings, plan
        self.bronze, self.sources, self.work, self.deadline = bronze, sources, work, deadline
        self.options = storage_options(settings)
        self.spec = plan.spec
        self.out = Outcome(rows_in=bronze.rows)

    def run(
        self, columns: tuple[ColumnRule, ...], run_prefix: str, previous: Committed | None
    ) -> Outcome:
        source = self.bronze_rows()
        if any(c.type is None for c in columns):
            columns = self.infer_types(source, columns)
        silver_schema = self.silver_schema(source, columns)
        self.out.schema = [(name, str(dtype)) for name, dtype in silver_schema.items()]
        if previous is not None and self.spec.fail_on_schema_drift:
            old = [(c.name, c.type) for c in previous.manifest.columns]
            report.fail_on_drift(previous.manifest.run_id, old, self.out.schema)
        self.deadline.check("casting bronze rows")
        buckets, quarantine = self.first_pass(source, columns, run_prefix)
        self.deadline.check("removing duplicates")
        self.second_pass(buckets, columns, run_prefix, silver_schema)
        self.out.quarantine_objects = [*quarantine, *self.out.quarantine_objects]
        self.out.rows_out = sum(o.rows for o in self.out.data_objects)
        self.out.rows_rejected = sum(o.rows for o in self.out.quarantine_objects)
        report.fail_if_mostly_quarantined(
            self.out.rows_in,
            self.out.rejected_by_reason,
            self.out.quality,
            self.spec.max_bad_percent,
        )
        return self.out

    def bronze_rows(self) -> pl.LazyFrame:
        """The rows of the bronze table's version read, with its schema."""
        return self.bronze.scan(self.settings)

    def infer_types(
        self, source: pl.LazyFrame, columns: tuple[ColumnRule, ...]
    ) -> tuple[ColumnRule, ...]:
        if not columns:
            return columns
        with polars_errors("inferring column types"):
            found = casting.infer_types(source, columns)
        self.out.warnings += [f.warning for f in found if f.warning]
        kinds = [f.type for f in found]
        typed = with_types(columns, kinds)
        check_types(self.spec, typed)
        return typed

    def silver_schema(self, source: pl.LazyFrame, columns: tuple[ColumnRule, ...]) -> pl.Schema:
        typed = transform.typed_frame(source, self.sources, columns, self.spec.expectations)
        schema = typed.select(
            *(c.target for c in columns), *(s for _, s in CARRIED_AUDIT)
        ).collect_schema()
        return pl.Schema({**schema, "_silver_run_id": pl.String()})

    def first_pass(
        self, source: pl.LazyFrame, columns: tuple[ColumnRule, ...], run_prefix: str
    ) -> tuple[list[Path | pl.DataFrame], list[ManifestObject]]:
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
        keys = list(spec.dedupe.keys) or [c.target for c in columns] or ["_row_hash"]
        count = self.bucket_count()
        rows = typed.filter(pl.col("__reject").is_null()).select(kept)
        buckets: list[Path] = []
        quarantined: list[ManifestObject] = []
        quarantine_key = f"{run_prefix}_quarantine/part-00000.parquet"

        def note_quarantine(args: Any) -> None:
            quarantined.extend(
                ManifestObject(key=quarantine_key, size_bytes=p.num_bytes, rows=p.num_rows)
                for p in args.paths
            )

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
                    quarantine.sink_parquet(
                        s3_url(self.settings, quarantine_key),
                        storage_options=self.options,
                        maintain_order=False,
                        lazy=True,
                        sinked_paths_callback=note_quarantine,
                    ),
                    kept_rows,
                    transform.quality_counts(typed, columns, spec.expectations, spec.dedupe.keys),
                ],
                engine="streaming",
            )
        self.count_first_pass(results[2], implicit, rules)
        if quarantined and quarantined[0].rows == 0:
            self.store.delete_keys([quarantine_key])
            quarantined = []
        if count == 1:
            return [results[1]], quarantined
        return sorted(buckets), quarantined

    def count_first_pass(
        self, counts: pl.DataFrame, implicit: list[transform.Check], rules: list[transform.Check]
    ) -> None:
        totals = counts.drop("__reject").sum().row(0, named=True) if counts.height else {}
        rows = int(totals.get("__rows") or 0)
        if rows != self.out.rows_in:
            raise FailedPrecondition(
                f"the files of bronze version {self.bronze.version} hold {rows} rows but its "
                f"log says {self.out.rows_in}: bronze changed while silver read it; retry"
            )
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
        self.kept_before_dedupe = rows - sum(self.reasons.values())
        null_keys = int(totals.get("__null_keys") or 0)
        if null_keys:
            self.out.warnings.append(
                f"{null_keys} rows have a null dedupe key ({', '.join(self.spec.dedupe.keys)}); "
                "rows whose keys are equal, nulls included, were deduplicated together"
            )

    def bucket_count(self) -> int:
        parquet_bytes = self.bronze.size_bytes
        needed = parquet_bytes * MEMORY_PER_PARQUET_BYTE * DEDUPE_COPIES
        budget = max(self.settings.silver_memory_limit_mb, 1) << 20
        return min(max(1, math.ceil(needed / budget)), MAX_BUCKETS)

    def second_pass(
        self,
        buckets: list[Path | pl.DataFrame],
        columns: tuple[ColumnRule, ...],
        run_prefix: str,
        silver_schema: pl.Schema,
    ) -> None:
        """Latest wins per key, one bucket at a time; unique rules over all kept rows."""
        spec, dedupe = self.spec, self.spec.dedupe
        keys = list(dedupe.keys) or [c.target for c in columns] or ["_row_hash"]
        uniques = transform.unique_checks(spec.expectations)
        key_rows: list[pl.DataFrame] = []
        ties = 0
        kept_files: list[Path] = []
        parts = len(buckets)  # value-count partitions per unique rule (spilled, see below)
        for index in range(len(buckets)):
            self.deadline.check("removing duplicates")
            bucket = buckets.pop(0)  # no reference left: the rows go once deduplicated
            with polars_errors("removing duplicates"):
                rows = bucket if isinstance(bucket, pl.DataFrame) else pl.read_parquet(bucket)
                found = transform.dedupe(rows, keys, dedupe.sequence_by, dedupe.tie_breaker)
            del rows
            if isinstance(bucket, Path):
                bucket.unlink()
            del bucket
            key_rows.append(found.key_rows)
            ties += found.ties
            if uniques:
                for u in uniques:
                    self.spill_value_counts(found.kept, u, parts, index)
                kept_files.append(self.work.path(f"kept-{index:05d}.parquet"))
                found.kept.write_parquet(kept_files[-1], compression="lz4")
            else:
                self.write_silver(found.kept, run_prefix, index, silver_schema)
        self.count_duplicates(key_rows, ties)
        if uniques:
            self.check_uniques(uniques, parts, kept_files, columns, run_prefix, silver_schema)
        if not self.out.data_objects:
            self.write_silver(pl.DataFrame(schema=silver_schema), run_prefix, 0, silver_schema)

    def count_duplicates(self, key_rows: list[pl.DataFrame], ties: int) -> None:
        dedupe = self.spec.dedupe
        merged = pl.concat(key_rows).group_by("n").agg(pl.col("keys").sum()) if key_rows else None
        pairs = [(int(n), int(k)) for n, k in merged.iter_rows()] if merged is not None else []
        self.out.duplicates = report.duplicate_counts(pairs)
        self.out.duplicates_removed = sum(d.rows_removed for d in self.out.duplicates)
        self.kept_rows = self.kept_before_dedupe - self.out.duplicates_removed
        if ties:
            decided = (
                f"the tie_breaker {dedupe.tie_breaker!r}" if dedupe.tie_breaker else "bronze order"
            )
            self.out.warnings.append(
                f"{ties} keys ({', '.join(dedupe.keys)}) had rows tied on {dedupe.sequence_by!r}; "
                f"{decided} decided which one was kept"
            )
        self.out.rejected_by_reason = dict(self.reasons)

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
        run_prefix: str,
        silver_schema: pl.Schema,
    ) -> None:
        repeated: dict[str, pl.Series] = {}
        counted = []
        for u in uniques:
            dtype = silver_schema[u.column]
            repeated[u.flag], rows = self.repeated_values(u, parts, dtype)
            counted.append(report.Counted(u, self.kept_rows, rows))
        report.fail_if_breached(counted)
        self.out.quality += counted
        self.out.warnings += report.warn_messages(counted)
        dropping = [u for u in uniques if u.action == "drop"]
        for index, path in enumerate(kept_files):
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
                key = f"{run_prefix}_quarantine/unique-{index:05d}.parquet"
                self.out.quarantine_objects.append(self.write(frame, key, "writing the quarantine"))
            self.write_silver(
                kept.filter(pl.col("__ureject").is_null()), run_prefix, index, silver_schema
            )
        self.out.rejected_by_reason = dict(self.reasons)

    def write_silver(
        self, kept: pl.DataFrame, run_prefix: str, index: int, schema: pl.Schema
    ) -> None:
        frame = kept.with_columns(_silver_run_id=pl.lit(self.plan.run_id)).select(list(schema))
        key = f"{run_prefix}part-{index:05d}.parquet"
        self.out.data_objects.append(self.write(frame, key, "writing silver"))

    def write(self, frame: pl.DataFrame, key: str, doing: str) -> ManifestObject:
        """Writes one zstd Parquet object straight to the object store and describes it."""
        written: list[ManifestObject] = []

        def note(args: Any) -> None:
            written.extend(
                ManifestObject(key=key, size_bytes=p.num_bytes, rows=p.num_rows) for p in args.paths
            )

        with polars_errors(doing):
            frame.lazy().sink_parquet(
                s3_url(self.settings, key),
                storage_options=self.options,
                compression="zstd",
                sinked_paths_callback=note,
            )
        return written[0]
