"""Silver's commits as runs left them: the last one, a replay of one, and the quarantine
commit that follows each.

A run commits silver first (the commit racing runs contend for), then its quarantine
rows, staged before the silver commit and listed in its report. A run that stopped
between the two leaves those files uncommitted: whoever finds that silver commit next (a
replay of the run, or the job's next run) commits them, so no quarantined row is lost.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from deltalake import DeltaTable

from flowforge import tables
from flowforge.errors import Conflict, FailedPrecondition
from flowforge.layout import JobKey
from flowforge.reports import LayerReport
from flowforge.settings import Settings
from services.silver.bronze_input import arrow_schema
from services.silver.refresh import FULL
from services.silver.staging import StagedFile, commit_files, file_schema

# How far back silver's last FlowForge commit is looked for (others: e.g. ADD FEATURE).
LAST_COMMIT_SCAN = 20


@dataclass(frozen=True)
class Tables:
    """The tables one refine reads and writes."""

    bronze: tables.TableRef
    silver: tables.TableRef
    quarantine: tables.TableRef

    @classmethod
    def of(cls, job: JobKey) -> Tables:
        return cls(
            tables.TableRef.bronze(job),
            tables.TableRef.silver(job),
            tables.TableRef.silver_quarantine(job),
        )


def last_commit(silver: DeltaTable | None) -> tables.Commit | None:
    if silver is None:
        return None
    return next((c for c in tables.history(silver, LAST_COMMIT_SCAN) if c.run_id), None)


def commit_quarantine(
    settings: Settings, refs: Tables, run_id: str, report: LayerReport, silver_version: int
) -> int | None:
    """Adds the run's staged quarantine files (a full rebuild replaces the table's); the
    version of the quarantine commit, also when a racing attempt of the run made it."""
    files = [StagedFile.of(o) for o in report.reject_objects]
    table = tables.load(settings, refs.quarantine)
    done = tables.find_commit(table, run_id)
    if done is not None:
        return done.version
    mode = "overwrite" if report.refresh == FULL else "append"
    if files:
        schema = file_schema(settings, files[0].key)
    elif mode == "overwrite" and table is not None:  # a rebuild empties the quarantine
        schema = arrow_schema(table)
    else:
        return None
    properties = tables.commit_properties(
        run_id, inputs={"silver": {"version": silver_version, "run_id": run_id}}
    )
    # A Conflict: a racing attempt of the same run (or a replay) may have made it.
    with contextlib.suppress(Conflict):
        commit_files(settings, refs.quarantine, table, files, schema, mode, properties)
    done = tables.find_commit(tables.load(settings, refs.quarantine), run_id)
    if done is None:
        raise Conflict(f"another run committed {refs.quarantine} first; retry")
    return done.version


def replay(settings: Settings, refs: Tables, commit: tables.Commit) -> LayerReport:
    """The report a committed run recorded, completed with its quarantine commit."""
    if commit.report is None:
        raise FailedPrecondition(
            f"silver version {commit.version} of run {commit.run_id} holds no report to replay"
        )
    report = commit.report.model_copy(deep=True)
    located(report, refs, commit.version)
    report.side_version = commit_quarantine(settings, refs, commit.run_id, report, commit.version)
    report.reused = True
    return report


def located(report: LayerReport, refs: Tables, version: int) -> None:
    report.table = refs.silver.path
    report.table_version = version
    report.manifest_key = f"{refs.silver.path}/_delta_log/{version:020d}.json"
