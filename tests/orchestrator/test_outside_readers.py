"""An analyst with no FlowForge code reads every layer's Delta table after the sample run
(polars through delta-rs, DuckDB's delta_scan) and gets the execution's counts; time travel
to the version an earlier execution committed gives that execution's rows."""

from __future__ import annotations

import polars as pl

from flowforge.layout import JobKey, landing_prefix
from orchestrator.store import ExecutionRecord
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import Stack
from tests.outside import duckdb_rows, duckdb_with_delta, outside_options
from tests.sample_oracle import EXPECTED

JOB = "products"
MORE = b"product_id,name,category,price,active\nP9001,Extra item,books,9.99,true\n"


def versions(execution: ExecutionRecord, layer: str) -> dict[str, int]:
    """table path -> the version the step committed (its output, side and model tables)."""
    step = execution.step(layer)
    return {t.table: t.version for t in step.tables if t.role != "input"}


def test_every_layer_reads_outside_flowforge_with_its_counts_and_history(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = stack.add_workflow(sample_workflow)
    first = stack.store.get_execution(
        stack.flow(workflow_id=workflow.id, job_id=JOB)["execution_id"]
    )
    assert first.status == "COMPLETED", first.error
    bucket = f"s3://{stack.settings.s3_bucket}"
    options = outside_options(stack.settings)
    con = duckdb_with_delta(stack.settings)

    def read_both(path: str, version: int | None = None) -> int:
        polars_rows = pl.read_delta(f"{bucket}/{path}", version=version, storage_options=options)
        duckdb_count = duckdb_rows(con, f"{bucket}/{path}", version).height
        assert polars_rows.height == duckdb_count, path
        return duckdb_count

    bronze_in, bronze_out, rejected = EXPECTED[JOB]["bronze"]
    silver_in, silver_out, quarantined = EXPECTED[JOB]["silver"]
    w = workflow.id
    assert read_both(f"bronze/{w}/{JOB}") == bronze_out
    assert read_both(f"silver/{w}/{JOB}") == silver_out
    if quarantined:
        assert read_both(f"silver/{w}/_quarantine/{JOB}") == quarantined
    if rejected:
        assert read_both(f"bronze/{w}/_rejects/{JOB}") == rejected
    models = {m["name"]: m["rows"] for m in first.step("gold").quality["models"]}
    for name, rows in models.items():
        assert read_both(f"gold/{w}/{JOB}/{name}") == rows, name

    # A second file lands and a second execution commits: the tables move on, and the
    # versions the first execution recorded still read as it left them.
    stack.object_store.put_bytes(landing_prefix(JobKey(w, JOB)) + "more.csv", MORE)
    second = stack.store.get_execution(stack.flow(workflow_id=w, job_id=JOB)["execution_id"])
    assert second.status == "COMPLETED", second.error
    assert read_both(f"silver/{w}/{JOB}") == silver_out + 1
    silver_version = versions(first, "silver")[f"silver/{w}/{JOB}"]
    assert read_both(f"silver/{w}/{JOB}", silver_version) == silver_out
    bronze_version = versions(first, "bronze")[f"bronze/{w}/{JOB}"]
    assert read_both(f"bronze/{w}/{JOB}", bronze_version) == bronze_out
    assert read_both(f"bronze/{w}/{JOB}") == bronze_out + 1
