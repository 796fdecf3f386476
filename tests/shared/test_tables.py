"""The Delta table foundation on the real SeaweedFS: a commit carries its run and report and
is found again by run id; a lost race is ABORTED; a store ignoring conditions is refused."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from flowforge import tables
from flowforge.errors import Conflict, FailedPrecondition
from flowforge.layout import JobKey
from flowforge.reports import LayerReport, ModelOutput
from flowforge.settings import Settings
from flowforge.storage import ObjectStore, make_client
from flowforge.tables import TableRef
from tests.shared.test_manifest import IgnoringClient


def report(run_id: str, rows: int) -> LayerReport:
    return LayerReport(
        layer="silver",
        workflow_id="w",
        job_id="j",
        run_id=run_id,
        rows_out=rows,
        models=[ModelOutput(name="m", key="k", rows=1, size_bytes=1, preview_json='[{"a":1}]')],
    )


def write(settings: Settings, ref: TableRef, run_id: str, rows: int, **extra: Any) -> None:
    with tables.delta_errors("writing", ref):
        write_deltalake(
            ref.uri(settings),
            pa.table({"n": list(range(rows))}),
            mode="append",
            storage_options=tables.storage_options(settings),
            commit_properties=tables.commit_properties(
                run_id, report(run_id, rows), {"bronze": {"version": 3}}
            ),
            **extra,
        )


def write_to(settings: Settings, ref: TableRef, table: Any, run_id: str, rows: int) -> None:
    """Appends through a table object loaded earlier: the commit is made against the
    version that object read."""
    with tables.delta_errors("writing", ref):
        write_deltalake(
            table,
            pa.table({"n": list(range(rows))}),
            mode="append",
            commit_properties=tables.commit_properties(run_id, report(run_id, rows)),
        )


def test_a_commit_is_found_again_by_its_run_id(settings: Settings, job: JobKey) -> None:
    ref = TableRef.silver(job)
    assert tables.load(settings, ref) is None
    write(settings, ref, "run-a", 2, configuration=tables.CHANGE_DATA_FEED)
    write(settings, ref, "run-b", 5)
    table = tables.require(settings, ref, "silver")
    found = tables.find_commit(table, "run-a")
    assert found is not None and found.version == 0
    assert found.report is not None and found.report.rows_out == 2
    assert found.inputs == {"bronze": {"version": 3}}
    assert found.report.models[0].preview_json == ""  # previews stay out of the log
    assert tables.find_commit(table, "run-c") is None
    assert [c.run_id for c in tables.history(table)] == ["run-b", "run-a"]
    assert table.version() == 1 and table.count() == 7


def test_a_lost_race_is_aborted_and_nothing_is_lost(settings: Settings, job: JobKey) -> None:
    """Two attempts of one run that both read the same version before either commits (the
    race, made deterministic): the first commits, the second is ABORTED, nothing is lost."""
    ref = TableRef.bronze(job)
    write(settings, ref, "first", 1)
    first, second = (tables.require(settings, ref, "bronze") for _ in range(2))
    write_to(settings, ref, first, "same-run", 3)
    with pytest.raises(Conflict, match=f"another run committed {ref} first"):
        write_to(settings, ref, second, "same-run", 3)
    table = tables.require(settings, ref, "bronze")
    assert table.count() == 1 + 3
    assert tables.find_commit(table, "same-run") is not None


def test_a_table_missing_is_named(settings: Settings, job: JobKey) -> None:
    with pytest.raises(FailedPrecondition, match=f"no Delta table at s3://.*/silver/{job}"):
        tables.require(settings, TableRef.silver(job), "silver")


@pytest.mark.parametrize("ignored", ["IfNoneMatch", "IfMatch"])
def test_a_store_ignoring_conditional_writes_is_refused(settings: Settings, ignored: str) -> None:
    store = ObjectStore(settings, client=IgnoringClient(make_client(settings), ignored))
    with pytest.raises(FailedPrecondition, match="does not honour conditional writes"):
        tables.require_conditional_writes(store)


def test_the_real_store_is_accepted(store: ObjectStore) -> None:
    tables.require_conditional_writes(store)


def test_refs_never_put_side_tables_inside_a_main_table() -> None:
    job = JobKey("w", "j")
    mains = [TableRef.bronze(job), TableRef.silver(job), TableRef.gold_model(job, "m")]
    sides = [TableRef.bronze_rejects(job), TableRef.silver_quarantine(job)]
    for main in mains:
        for other in [*mains, *sides]:
            if other != main:
                assert not other.prefix.startswith(main.prefix), (other, main)
    with pytest.raises(Exception, match="not a valid ID"):
        TableRef.gold_model(job, "../x")
    assert Conflict.status == "ABORTED"
