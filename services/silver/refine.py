"""Silver refine: bronze's Delta table in, silver's and its quarantine's commits out.

1. A run id silver already committed: the recorded report (reused); nothing is redone.
2. The spec is checked against bronze's columns before any data is read.
3. Incremental or full (refresh.py): bronze's changes since the version silver last read,
   cast, checked and deduplicated, then MERGEd into silver (merge.py); or all of bronze,
   in bounded memory (passes.py), overwriting silver. An incremental run that finds it
   needs a rebuild does one instead, and says why.
4. Silver's commit, then the quarantine's (recorded.py). Nothing is committed when a rule,
   drift or the caller's deadline says so, and this run's staged files are deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from flowforge import tables
from flowforge.errors import Conflict, FailedPrecondition
from flowforge.layout import JobKey
from flowforge.progress import Reporter, ignore
from flowforge.reports import Column, LayerReport
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.specs.silver import resolve_columns
from flowforge.specs.silver_model import ColumnRule, Spec
from flowforge.storage import ObjectStore
from services.silver import bronze_input, report, transform
from services.silver.engine import Workspace, polars_errors, storage_options
from services.silver.merge import Merger, execute
from services.silver.passes import Outcome, Refinery
from services.silver.recorded import Tables, commit_quarantine, last_commit, located, replay
from services.silver.refresh import FULL, INCREMENTAL, NeedsFullRebuild, Refresh, choose, spec_hash
from services.silver.staging import Staging, arrow_schema, commit_files


@dataclass(frozen=True)
class RefinePlan:
    job: JobKey
    run_id: str
    spec: Spec
    spec_json: dict[str, Any] = field(default_factory=dict)
    full_refresh: bool = False


def refine(
    store: ObjectStore,
    settings: Settings,
    plan: RefinePlan,
    deadline: Deadline,
    progress: Reporter = ignore,
) -> LayerReport:
    """`progress` hears the checking pass, each deduplication bucket, writing, committing."""
    refs = Tables.of(plan.job)
    silver = tables.load(settings, refs.silver)
    found = tables.find_commit(silver, plan.run_id, settings)
    if found is not None:
        return replay(settings, refs, found)
    bronze = tables.load(settings, refs.bronze)
    if bronze is None:
        raise FailedPrecondition(
            f"bronze has not been committed for job {plan.job} "
            f"(no Delta table at s3://{settings.s3_bucket}/{refs.bronze}): run bronze first"
        )
    sources = bronze_input.source_columns(bronze)
    defaults, name_warnings = transform.default_targets(sources)
    columns = resolve_columns(plan.spec, sources, defaults)
    tables.require_conditional_writes(store)
    previous = last_commit(settings, silver)
    if previous is not None and previous.report is not None:
        commit_quarantine(settings, refs, previous.run_id, previous.report, previous.version)
    choice = choose(
        settings, previous, bronze, sources, spec_hash(plan.spec_json), plan.full_refresh
    )
    deadline.check("starting")
    run = Run(store, settings, plan, refs, silver, bronze, sources, previous, deadline)
    run.progress = progress
    if not plan.spec.columns:  # names silver chose itself
        run.warnings = name_warnings
    with Workspace(settings) as work:
        if choice.mode == INCREMENTAL:
            try:
                return run.incremental(choice, columns, work)
            except NeedsFullRebuild as why:
                choice = Refresh(FULL, why.reason)
        return run.full(choice, columns, work)


class Run:
    """One refine past its checks: the tables as it loaded them, and its two ways."""

    def __init__(
        self,
        store: ObjectStore,
        settings: Settings,
        plan: RefinePlan,
        refs: Tables,
        silver: DeltaTable | None,
        bronze: DeltaTable,
        sources: list[str],
        previous: tables.Commit | None,
        deadline: Deadline,
    ) -> None:
        self.store, self.settings, self.plan, self.refs = store, settings, plan, refs
        self.silver, self.bronze, self.sources = silver, bronze, sources
        self.previous, self.deadline = previous, deadline
        self.started = time.monotonic()
        self.progress: Reporter = ignore
        self.warnings: list[str] = []  # the run's own, ahead of the passes'
        # Read with boto, not DeltaTable.history (which holds the GIL while the store answers).
        self.bronze_run = tables.commit_at(store, refs.bronze, bronze.version()).run_id

    def schema_before(self) -> tuple[str, pl.Schema] | None:
        if self.silver is None or self.previous is None:
            return None
        return self.previous.run_id, bronze_input.polars_schema(self.silver)

    def incremental(
        self, choice: Refresh, columns: tuple[ColumnRule, ...], work: Workspace
    ) -> LayerReport:
        assert self.silver is not None and self.previous is not None and choice.since is not None
        batch = bronze_input.changes(
            self.bronze, self.refs.bronze, choice.since, choice.commits, work
        )
        quarantine = Staging(self.store, self.settings, self.refs.quarantine)
        try:
            out = Refinery(
                self.settings,
                self.plan,
                batch,
                self.sources,
                work,
                self.deadline,
                quarantine,
                None,
                self.progress,
            ).run(columns, self.schema_before(), self.previous.inputs.get("inference"))
            merger = Merger(
                self.settings,
                self.silver,
                self.refs.silver,
                self.plan.spec,
                Refinery.record_keys(self.plan.spec, columns),
                self.plan.run_id,
            )
            merge = merger.plan(out, self.quarantined_by)
            result = self.describe(choice, out, quarantine, None, batch.version)
            result.input_from_version = choice.since + 1
            result.total_rows = table_rows(self.silver) + out.rows_out
            self.deadline.check("committing")  # a caller that gave up must not see a commit
        except BaseException:
            quarantine.discard()
            raise
        properties = self.properties(result, out, batch.version)
        silver = self.silver
        return self.committed(
            result, lambda: execute(self.settings, silver, self.refs.silver, merge, properties)
        )

    def full(
        self, choice: Refresh, columns: tuple[ColumnRule, ...], work: Workspace
    ) -> LayerReport:
        batch = bronze_input.whole(self.settings, self.bronze, self.refs.bronze)
        quarantine = Staging(self.store, self.settings, self.refs.quarantine)
        staged = Staging(self.store, self.settings, self.refs.silver)
        try:
            out = Refinery(
                self.settings,
                self.plan,
                batch,
                self.sources,
                work,
                self.deadline,
                quarantine,
                staged,
                self.progress,
            ).run(columns, self.schema_before(), None)
            result = self.describe(choice, out, quarantine, staged, batch.version)
            result.total_rows = out.rows_out
            self.deadline.check("committing")  # a caller that gave up must not see a commit
        except BaseException:
            quarantine.discard()
            staged.discard()
            raise
        properties = self.properties(result, out, batch.version)
        return self.committed(
            result,
            lambda: commit_files(
                self.settings,
                self.refs.silver,
                self.silver,
                staged.files,
                arrow_schema(out.schema),
                "overwrite",
                properties,
            ),
        )

    def committed(self, result: LayerReport, commit: Callable[[], None]) -> LayerReport:
        """Commits silver, then the quarantine; a Conflict is this run's own commit made by
        a racing attempt (replayed) or another run's (ABORTED)."""
        self.progress("committing")
        try:
            commit()
        except Conflict:
            found = self.own_commit()
            if found is None:
                raise
            return replay(self.settings, self.refs, found)
        # The version the commit got, from the log: delta-rs does not always move the
        # loaded table along, and may have placed it after commits that do not conflict.
        found = self.own_commit()
        assert found is not None, "a commit that succeeded is in the log"
        located(result, self.refs, found.version)
        result.side_version = commit_quarantine(
            self.settings, self.refs, self.plan.run_id, result, found.version
        )
        result.seconds = time.monotonic() - self.started
        return result

    def own_commit(self) -> tables.Commit | None:
        return tables.find_commit(
            tables.load(self.settings, self.refs.silver), self.plan.run_id, self.settings
        )

    def properties(self, result: LayerReport, out: Outcome, version: int) -> Any:
        inputs: dict[str, Any] = {
            "bronze": {"version": version, "run_id": self.bronze_run, "columns": self.sources},
            "spec": spec_hash(self.plan.spec_json),
        }
        if out.inference:
            inputs["inference"] = out.inference
        return tables.commit_properties(self.plan.run_id, result, inputs, read=("bronze", version))

    def quarantined_by(self, rule_id: str) -> int:
        """Rows silver's quarantine holds for a rule (since the last rebuild replaced it)."""
        table = tables.load(self.settings, self.refs.quarantine)
        files = tables.version_files(table, self.refs.quarantine) if table is not None else []
        if not files:
            return 0
        with polars_errors("reading the quarantine"):
            return int(
                pl.scan_parquet(files, storage_options=storage_options(self.settings))
                .filter(pl.col("_rule_id") == rule_id)
                .select(pl.len())
                .collect()
                .item()
            )

    def describe(
        self,
        choice: Refresh,
        out: Outcome,
        quarantine: Staging,
        staged: Staging | None,
        bronze_version: int,
    ) -> LayerReport:
        """The report the commit records (its version is the one it will have)."""
        drift = None
        before = self.schema_before()
        if before is not None:
            old = [(n, str(t)) for n, t in before[1].items()]
            drift = report.schema_drift(*transform.drift(old, out.columns))
        out.warnings[:0] = self.warnings
        version = self.silver.version() + 1 if self.silver is not None else 0
        result = LayerReport(
            layer="silver",
            workflow_id=self.plan.job.workflow_id,
            job_id=self.plan.job.job_id,
            run_id=self.plan.run_id,
            output_prefix=self.refs.silver.prefix,
            data_objects=[f.described() for f in staged.files] if staged else [],
            reject_objects=[f.described() for f in quarantine.files],
            rows_in=out.rows_in,
            rows_out=out.rows_out,
            rows_rejected=out.rows_rejected,
            columns=[Column(name=n, type=t) for n, t in out.columns],
            warnings=out.warnings,
            rejected_by_reason=out.rejected_by_reason,
            duplicates_removed=out.duplicates_removed,
            duplicates=out.duplicates,
            quality=[c.result() for c in out.quality],
            drift=drift,
            input_run_id=self.bronze_run,
            input_version=bronze_version,
            side_table=self.refs.quarantine.path,
            refresh=choice.mode,
            refresh_reason=choice.reason,
            seconds=time.monotonic() - self.started,
        )
        located(result, self.refs, version)
        return result


def table_rows(table: DeltaTable) -> int:
    """The rows of the loaded version, from its files' statistics (counted when a file's
    log entry has none)."""
    actions = pl.from_arrow(pa.table(table.get_add_actions(flatten=True)))
    assert isinstance(actions, pl.DataFrame)
    if not actions.height:
        return 0
    records = actions.get_column("num_records")
    return int(records.sum()) if not records.null_count() else table.count()
