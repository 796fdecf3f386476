"""The sample workflow's own models (customer-data.yaml's top-level gold), built by the
service over the oracle's silver, equal the oracle's answers computed without their SQL."""

from __future__ import annotations

import uuid

import polars as pl

from flowforge.layout import JobKey
from flowforge.settings import Settings
from orchestrator.workflows import load_workflow_file
from tests import sample_oracle
from tests.gold.conftest import build_workflow, commit_dimension, commit_silver, read_model


def test_the_sample_workflow_models_equal_the_oracle_row_for_row(gold, settings: Settings) -> None:
    sample = load_workflow_file(sample_oracle.WORKFLOW)
    spec = sample.workflow_gold_spec()
    assert spec is not None
    workflow_id = f"{sample.id}-{uuid.uuid4().hex[:8]}"
    for job in sample.jobs:
        rows, _ = sample_oracle.silver(job.id)
        frame = pl.DataFrame(rows, infer_schema_length=None)
        commit_silver(settings, JobKey(workflow_id, job.id), frame, run_id=f"exec-{job.id}")
    countries = sample_oracle.ROOT / "examples" / "dimensions" / "countries.csv"
    commit_dimension(settings, "countries", pl.read_csv(countries, infer_schema=False))

    jobs = [job.id for job in sample.jobs]
    result = build_workflow(
        gold, workflow_id, {m.name: m.sql for m in spec.models}, jobs,
        dimensions=list(spec.dimensions),
    )  # fmt: skip
    expected = sample_oracle.workflow_models()
    assert [m.name for m in result.models] == list(expected)  # valid_orders runs first
    assert {m.status for m in result.models} == {"BUILT"}
    for name, rows in expected.items():
        got = read_model(settings, result, name).to_dicts()
        assert got == rows, name
    assert len(expected["best_sellers_by_category"]) > 3  # several categories, ranked
    assert any(r["orders"] == 0 for r in expected["customer_lifetime"])  # never ordered
    runs = {
        m.name: sorted({(i.job_id, i.run_id) for i in m.inputs if i.job_id}) for m in result.models
    }
    assert runs["revenue_by_country_month"] == [
        ("customers", "exec-customers"),
        ("orders", "exec-orders"),  # through gold.valid_orders
    ]
