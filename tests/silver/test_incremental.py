"""Incremental silver: ten bronze commits merged one run at a time end as one full rebuild
of all ten does, value for value; rebuilds happen when they must and say why; every
run's rows add up; a repeated run id is reused; of two racing runs exactly one commits."""

from __future__ import annotations

import csv
import io
import random
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import polars as pl
import pytest
from google.protobuf import json_format
from polars.testing import assert_frame_equal

from flowforge import tables
from flowforge.errors import Conflict
from flowforge.layout import JobKey
from flowforge.reports import LayerReport
from flowforge.runtime import Deadline
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import common_pb2, silver_pb2
from services.silver import transform
from services.silver.refine import refine as refine_directly
from services.silver.servicer import plan_from_proto
from tests.silver.bronze_table import write_bronze
from tests.silver.conftest import read_quarantine, read_silver

COLUMNS = [
    {"source": "id", "type": "integer"},
    {"source": "name"},
    {"source": "amount", "type": "float"},
    {"source": "at", "type": "timestamp"},
]
# Small batches quarantine a large share of their rows at times: any share is allowed.
KEYED = {
    "columns": COLUMNS,
    "dedupe": {"keys": ["id"], "sequence_by": "at"},
    "max_bad_percent": 100,
}
EXACT = {"columns": COLUMNS, "max_bad_percent": 100}  # no keys: equal rows are one record
SCD2 = {
    "columns": COLUMNS,
    "dedupe": {"keys": ["id"], "sequence_by": "at", "tie_breaker": "name", "history": "scd2"},
    "max_bad_percent": 100,
}
INFERRED: dict[str, Any] = {}  # every column, types inferred from all of bronze


def batch_csv(index: int, rows: int = 14) -> bytes:
    """A small CSV whose ids, names and times repeat within and across batches (updates,
    ties, exact duplicates), with amounts that do not cast (quarantined) and nulls."""
    rng = random.Random(index)
    lines = [["id", "name", "amount", "at"]]
    for _ in range(rows):
        if len(lines) > 1 and rng.random() < 0.15:
            lines.append(list(rng.choice(lines[1:])))  # an exact duplicate in the batch
            continue
        amount = rng.choice([str(rng.randrange(5)), f"{rng.randrange(5)}.5", "", "x"])
        at = rng.choice(["", *(f"2024-01-0{d}T0{h}:00:00" for d in (1, 2, 3) for h in (0, 1))])
        lines.append([str(rng.randrange(6)), rng.choice(["a", "b", ""]), amount, at])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(lines)
    return out.getvalue().encode()


@pytest.fixture
def run(store: ObjectStore, settings: Settings, job: JobKey) -> Callable[..., LayerReport]:
    """One silver run of the test's job, as the servicer would make it from a request."""

    def refine(
        spec: dict[str, Any],
        run_id: str,
        full_refresh: bool = False,
        deadline: Deadline | None = None,
    ) -> LayerReport:
        request = silver_pb2.RefineRequest(
            job=common_pb2.JobRef(workflow_id=job.workflow_id, job_id=job.job_id),
            run_id=run_id,
            spec=json_format.ParseDict(spec, silver_pb2.SilverSpec()),
            full_refresh=full_refresh,
        )
        return refine_directly(store, settings, plan_from_proto(request), deadline or Deadline())

    return refine


def rows_of(frame: pl.DataFrame) -> pl.DataFrame:
    """A table's rows in one order, without the run that wrote each (which differs)."""
    frame = frame.drop("_silver_run_id", strict=False)
    return frame.sort(frame.columns, nulls_last=True)


def silver_version(settings: Settings, job: JobKey) -> int:
    return tables.require(settings, tables.TableRef.silver(job), "silver").version()


def assert_accounted(
    result: LayerReport, bronze_rows: int, settings: Settings, job: JobKey
) -> None:
    """This batch's rows: read = kept + quarantined + duplicates removed; plus the table's."""
    assert result.rows_in == bronze_rows
    assert result.rows_in == result.rows_out + result.rows_rejected + result.duplicates_removed
    assert result.duplicates_removed == sum(d.rows_removed for d in result.duplicates)
    assert result.total_rows == read_silver(settings, job).height
    assert result.table_version == silver_version(settings, job)


@pytest.mark.parametrize(
    "spec", [KEYED, EXACT, SCD2, INFERRED], ids=["keyed", "exact", "scd2", "inferred"]
)
def test_ten_batches_one_run_at_a_time_equal_one_full_rebuild(
    run: Callable[..., LayerReport], settings: Settings, job: JobKey, spec: dict[str, Any]
) -> None:
    quarantined = 0
    for i in range(10):
        bronze = write_bronze(settings, job, batch_csv(i), f"b{i}", source=f"batch{i:02d}.csv")
        result = run(spec, f"s{i}")
        assert (result.refresh, result.input_version) == (
            "full" if i == 0 else "incremental",
            bronze.version,
        )
        assert result.input_from_version == (None if i == 0 else bronze.version)
        assert_accounted(result, bronze.rows, settings, job)
        quarantined += result.rows_rejected
    incremental = read_silver(settings, job)
    incremental_quarantine = read_quarantine(settings, job)
    assert incremental_quarantine.height == quarantined

    full = run(spec, "full", full_refresh=True)
    assert (full.refresh, full.refresh_reason) == ("full", "full_refresh was requested")
    assert full.rows_in == tables.load(settings, tables.TableRef.bronze(job)).count()  # type: ignore[union-attr]
    assert_frame_equal(rows_of(read_silver(settings, job)), rows_of(incremental))
    assert_frame_equal(rows_of(read_quarantine(settings, job)), rows_of(incremental_quarantine))
    assert full.rows_rejected == quarantined


def latest_per_id(batches: list[bytes]) -> dict[int, tuple[Any, ...]]:
    """The oracle for KEYED, given the batches in the order bronze ingested them: per id,
    the row with the latest `at` (a missing one is the earliest), then the batch ingested
    later, then the later line; rows whose amount is not a number are quarantined first.
    From the csv module, not from silver's code."""
    best: dict[int, tuple[Any, ...]] = {}
    for b, data in enumerate(batches):
        for line, row in enumerate(csv.DictReader(io.StringIO(data.decode())), start=1):
            try:
                amount = float(row["amount"]) if row["amount"] else None
            except ValueError:
                continue
            at = datetime.fromisoformat(row["at"]) if row["at"] else None
            rank = (at is not None, at or datetime.min, b, line)
            value = (row["name"] or None, amount, at)
            ident = int(row["id"])
            if ident not in best or rank > best[ident][0]:
                best[ident] = (rank, value)
    return {ident: value for ident, (_, value) in best.items()}


def silver_by_id(settings: Settings, job: JobKey) -> dict[int, tuple[Any, ...]]:
    frame = read_silver(settings, job)
    return {r[0]: r[1:] for r in frame.select("id", "name", "amount", "at").iter_rows()}


def test_incremental_keyed_silver_matches_an_independent_oracle(
    run: Callable[..., LayerReport], settings: Settings, job: JobKey
) -> None:
    batches = [batch_csv(i) for i in range(4)]
    for i, data in enumerate(batches):
        write_bronze(settings, job, data, f"b{i}", source=f"batch{i:02d}.csv")
        run(KEYED, f"s{i}")
    assert silver_by_id(settings, job) == latest_per_id(batches)


def test_a_replaced_bronze_file_rebuilds_silver_in_full(
    run: Callable[..., LayerReport], settings: Settings, job: JobKey
) -> None:
    batches = [batch_csv(i) for i in range(3)]
    for i, data in enumerate(batches):
        write_bronze(settings, job, data, f"b{i}", source=f"batch{i:02d}.csv")
        assert run(KEYED, f"s{i}").refresh == ("full" if i == 0 else "incremental")
    batches[1] = batch_csv(101)  # batch01.csv re-uploaded with other rows
    bronze = write_bronze(settings, job, batches[1], "b3", source="batch01.csv", replace=True)
    result = run(KEYED, "s3")
    assert result.refresh == "full"
    assert result.refresh_reason.startswith(f"bronze version {bronze.version} (run 'b3') replaced")
    assert f"/{job.job_id}/batch01.csv'" in result.refresh_reason
    assert result.rows_in == sum(len(b.splitlines()) - 1 for b in batches)
    ingested = [batches[0], batches[2], batches[1]]  # the new batch01.csv came last
    assert silver_by_id(settings, job) == latest_per_id(ingested)
    assert_accounted(result, result.rows_in, settings, job)


def test_a_changed_spec_rebuilds(
    run: Callable[..., LayerReport], settings: Settings, job: JobKey
) -> None:
    write_bronze(settings, job, batch_csv(0), "b0")
    first = run(KEYED, "s0")
    write_bronze(settings, job, batch_csv(1), "b1", source="more.csv")
    changed = {**KEYED, "expectations": [{"type": "not_null", "column": "name"}]}
    result = run(changed, "s1")
    assert (result.refresh, result.refresh_reason) == (
        "full",
        f"the silver spec changed since run {first.run_id}",
    )
    again = run(changed, "s2")  # nothing new, same spec: a merge of nothing
    assert (again.refresh, again.rows_in, again.rows_out) == ("incremental", 0, 0)
    assert again.refresh_reason == f"bronze has not changed since version {result.input_version}"
    assert again.total_rows == result.total_rows == read_silver(settings, job).height


def test_a_rerun_of_a_run_id_is_reused_and_commits_nothing(
    run: Callable[..., LayerReport], settings: Settings, job: JobKey
) -> None:
    write_bronze(settings, job, batch_csv(0), "b0")
    run(KEYED, "s0")
    write_bronze(settings, job, batch_csv(1), "b1", source="more.csv")
    first = run(KEYED, "s1")
    versions = silver_version(settings, job), read_quarantine(settings, job).height
    write_bronze(settings, job, batch_csv(2), "b2", source="later.csv")  # new rows wait
    again = run(KEYED, "s1")
    assert again.reused and not first.reused
    assert (silver_version(settings, job), read_quarantine(settings, job).height) == versions
    assert again.model_dump(exclude={"reused", "seconds"}) == first.model_dump(
        exclude={"reused", "seconds"}
    )


class MeetBeforeCommitting(Deadline):
    """Holds each racing run at its commit until both got there: both have read the same
    silver snapshot, so their commits really race."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__()
        self.barrier = barrier

    def check(self, doing: str = "") -> None:
        if doing == "committing":
            self.barrier.wait(timeout=60)


@pytest.mark.parametrize("first_run", [True, False], ids=["creating", "merging"])
def test_two_racing_runs_one_commits_the_other_is_aborted(
    run: Callable[..., LayerReport], settings: Settings, job: JobKey, first_run: bool
) -> None:
    write_bronze(settings, job, batch_csv(0), "b0")
    if not first_run:
        run(KEYED, "s0")
        write_bronze(settings, job, batch_csv(1), "b1", source="more.csv")
    before = silver_version(settings, job) if not first_run else -1
    barrier = threading.Barrier(2)
    outcomes: dict[str, LayerReport | Exception] = {}

    def racing(run_id: str) -> None:
        try:
            outcomes[run_id] = run(KEYED, run_id, deadline=MeetBeforeCommitting(barrier))
        except Exception as exc:  # noqa: BLE001 (the outcome is what the test looks at)
            outcomes[run_id] = exc

    threads = [threading.Thread(target=racing, args=(r,)) for r in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    won = [r for r, o in outcomes.items() if isinstance(o, LayerReport)]
    lost = [o for o in outcomes.values() if not isinstance(o, LayerReport)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], Conflict) and "another run" in str(lost[0])
    winner = outcomes[won[0]]
    assert isinstance(winner, LayerReport)
    assert silver_version(settings, job) == before + 1 == winner.table_version
    quarantine = read_quarantine(settings, job)
    assert set(quarantine["_silver_run_id"]) <= {"s0", won[0]}  # nothing of the loser's
    single = read_silver(settings, job)
    run(KEYED, "check", full_refresh=True)
    assert_frame_equal(rows_of(read_silver(settings, job)), rows_of(single))
    assert read_quarantine(settings, job).height == quarantine.height


def test_scd2_keeps_every_version_with_contiguous_validity(
    run: Callable[..., LayerReport], settings: Settings, job: JobKey
) -> None:
    updates = [
        b"id,name,amount,at\n1,a,1,2024-01-01T00:00:00\n2,b,1,2024-01-01T00:00:00\n",
        b"id,name,amount,at\n1,a,2,2024-01-03T00:00:00\n",
        b"id,name,amount,at\n1,a,3,2024-01-05T00:00:00\n1,a,3,2024-01-05T00:00:00\n",
        # arrives late: a version between the first two
        b"id,name,amount,at\n1,a,9,2024-01-02T00:00:00\n",
    ]
    for i, data in enumerate(updates[:3]):
        write_bronze(settings, job, data, f"b{i}", source=f"u{i}.csv")
        run(SCD2, f"s{i}")
    versions = read_silver(settings, job).filter(pl.col("id") == 1).sort("_valid_from")
    assert versions["amount"].to_list() == [1.0, 2.0, 3.0]
    assert versions["_valid_from"].to_list() == [datetime(2024, 1, d) for d in (1, 3, 5)]
    assert versions["_valid_to"].to_list() == [datetime(2024, 1, 3), datetime(2024, 1, 5), None]
    assert versions["_is_current"].to_list() == [False, False, True]

    again = run(SCD2, "s2")
    assert again.reused and read_silver(settings, job).filter(pl.col("id") == 1).height == 3

    write_bronze(settings, job, updates[3], "b3", source="u3.csv")
    late = run(SCD2, "s3")
    assert (late.refresh, late.rows_out, late.total_rows) == ("incremental", 1, 5)
    versions = read_silver(settings, job).filter(pl.col("id") == 1).sort("_valid_from")
    assert versions["amount"].to_list() == [1.0, 9.0, 2.0, 3.0]
    assert versions["_valid_to"].to_list() == [
        datetime(2024, 1, 2),
        datetime(2024, 1, 3),
        datetime(2024, 1, 5),
        None,
    ]
    assert versions["_is_current"].to_list() == [False, False, False, True]
    other = read_silver(settings, job).filter(pl.col("id") == 2)
    assert other.select("_valid_to", "_is_current").rows() == [(None, True)]


def test_a_unique_rule_sees_the_values_already_in_silver(
    run: Callable[..., LayerReport], settings: Settings, job: JobKey
) -> None:
    spec = {
        "columns": [{"source": "id", "type": "integer"}, {"source": "email"}],
        "expectations": [{"type": "unique", "column": "email", "action": "warn"}],
        "dedupe": {"keys": ["id"]},
        "max_bad_percent": 100,
    }
    write_bronze(settings, job, b"id,email\n1,a@x\n2,b@x\n", "b0")
    run(spec, "s0")
    # id 3 takes a@x, which id 1 holds; id 2 moves from b@x to c@x (its old value leaves).
    write_bronze(settings, job, b"id,email\n3,a@x\n2,c@x\n4,b@x\n", "b1", source="more.csv")
    result = run(spec, "s1")
    assert result.refresh == "incremental"
    (unique,) = [q for q in result.quality if q.rule_id == "unique_email"]
    assert (unique.checked, unique.failed) == (3, 1)  # id 3; not id 4: b@x is free again
    dropping = {**spec, "expectations": [{**spec["expectations"][0], "action": "drop"}]}
    run(dropping, "s2")  # the spec changed: a rebuild, which drops ids 1 and 3
    write_bronze(settings, job, b"id,email\n5,b@x\n", "b2", source="late.csv")
    rebuilt = run(dropping, "s3")
    assert rebuilt.refresh == "full"
    assert "unique rule 'unique_email'" in rebuilt.refresh_reason
    assert sorted(read_silver(settings, job)["id"]) == [2]  # 4 and 5 share b@x: both dropped


def test_an_inferred_type_that_no_longer_fits_rebuilds(
    run: Callable[..., LayerReport], settings: Settings, job: JobKey
) -> None:
    write_bronze(settings, job, b"code,label\n1,a\n2,b\n", "b0")
    first = run(INFERRED, "s0")
    assert {c.name: c.type for c in first.columns}["code"] == "Int64"
    write_bronze(settings, job, b"code,label\n3,c\n", "b1", source="more.csv")
    assert run(INFERRED, "s1").refresh == "incremental"
    write_bronze(settings, job, b"code,label\nA7,d\n", "b2", source="late.csv")
    result = run(INFERRED, "s2")
    assert result.refresh == "full"
    assert result.refresh_reason == "the silver columns change (retyped code (Int64 -> String))"
    assert sorted(read_silver(settings, job)["code"]) == ["1", "2", "3", "A7"]


def test_quarantine_rows_of_a_run_stopped_between_its_two_commits_are_not_lost(
    run: Callable[..., LayerReport], store: ObjectStore, settings: Settings, job: JobKey
) -> None:
    """A run that stopped after silver's commit, before the quarantine's: its quarantine
    commit is removed from the log, which leaves exactly that state (its files staged,
    uncommitted). The run's replay makes it; so does the job's next run."""
    quarantine = tables.TableRef.silver_quarantine(job)
    write_bronze(settings, job, batch_csv(0), "b0")
    first = run(KEYED, "s0")
    assert first.rows_rejected and read_quarantine(settings, job).height == first.rows_rejected
    store.delete_keys([f"{quarantine}/_delta_log/{first.side_version:020d}.json"])
    assert read_quarantine(settings, job).height == 0
    again = run(KEYED, "s0")
    assert again.reused and read_quarantine(settings, job).height == first.rows_rejected

    write_bronze(settings, job, batch_csv(1), "b1", source="more.csv")
    second = run(KEYED, "s1")
    store.delete_keys([f"{quarantine}/_delta_log/{second.side_version:020d}.json"])
    write_bronze(settings, job, batch_csv(2), "b2", source="later.csv")
    third = run(KEYED, "s2")
    per_run = dict(read_quarantine(settings, job).group_by("_silver_run_id").len().iter_rows())
    expected = {r.run_id: r.rows_rejected for r in (first, second, third) if r.rows_rejected}
    assert per_run == expected and second.rows_rejected


def merge_metrics(settings: Settings, job: JobKey) -> dict[str, Any]:
    """What delta-rs recorded about silver's last commit (a MERGE)."""
    table = tables.require(settings, tables.TableRef.silver(job), "silver")
    (entry,) = table.history(1)
    assert entry["operation"] == "MERGE"
    return dict(entry["operationMetrics"])


def test_a_merge_reads_only_the_silver_files_of_its_key_ranges(
    run: Callable[..., LayerReport], settings: Settings, job: JobKey
) -> None:
    rows = 2 * transform.ROWS_PER_RANGE + 10  # two key ranges: two files
    write_bronze(settings, job, b"id,name\n" + b"".join(b"%d,n\n" % i for i in range(rows)), "b0")
    spec = {
        "columns": [{"source": "id", "type": "integer"}, {"source": "name"}],
        "dedupe": {"keys": ["id"]},
    }
    first = run(spec, "s0")
    files = len(first.data_objects)
    assert files == 2
    write_bronze(settings, job, b"id,name\n%d,new\n" % (rows + 5), "b1", source="new.csv")
    assert run(spec, "s1").rows_out == 1
    metrics = merge_metrics(settings, job)
    assert (
        metrics["num_target_files_scanned"],
        metrics["num_target_files_skipped_during_scan"],
    ) == (0, files)
    write_bronze(settings, job, b"id,name\n5,changed\n", "b2", source="update.csv")
    assert run(spec, "s2").duplicates_removed == 1
    metrics = merge_metrics(settings, job)
    assert (metrics["num_target_files_scanned"], metrics["num_target_rows_updated"]) == (1, 1)
    merged = read_silver(settings, job)
    assert merged.filter(pl.col("id") == 5)["name"].to_list() == ["changed"]
    run(spec, "full", full_refresh=True)
    assert_frame_equal(rows_of(read_silver(settings, job)), rows_of(merged))


def test_two_racing_attempts_of_one_run_id_commit_once_and_both_answer(
    run: Callable[..., LayerReport], settings: Settings, job: JobKey
) -> None:
    """A retry of a call whose first attempt is still running (the caller gave up on it)."""
    write_bronze(settings, job, batch_csv(0), "b0")
    run(KEYED, "s0")
    write_bronze(settings, job, batch_csv(1), "b1", source="more.csv")
    barrier = threading.Barrier(2)
    answers: list[LayerReport | Exception] = []

    def attempt() -> None:
        try:
            answers.append(run(KEYED, "s1", deadline=MeetBeforeCommitting(barrier)))
        except Exception as exc:  # noqa: BLE001 (the outcome is what the test looks at)
            answers.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(isinstance(a, LayerReport) for a in answers), answers
    reports = [a for a in answers if isinstance(a, LayerReport)]
    assert sorted(r.reused for r in reports) == [False, True]
    assert {r.table_version for r in reports} == {silver_version(settings, job)}
    commits = tables.history(tables.require(settings, tables.TableRef.silver(job), "silver"))
    assert [c.run_id for c in commits] == ["s1", "s0"]
