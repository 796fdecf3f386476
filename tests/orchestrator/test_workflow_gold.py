"""A workflow's own gold in its YAML: models over silver.<job>, gold.<model> and dim_<name>,
refused when applied if they name an unknown table or form a cycle, at the model's line."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowforge.errors import InvalidArgument
from flowforge.specs.gold import parse_workflow_gold_spec
from orchestrator.workflows import Workflow, parse_workflow
from tests.orchestrator.conftest import ROOT

JOBS = """\
id: shop
jobs:
  - id: orders
    silver: {columns: [{source: id, type: integer}]}
  - id: customers
    silver: {columns: [{source: id, type: integer}]}
  - id: daily-sales
    silver: {columns: [{source: id, type: integer}]}
"""


def with_gold(models: str, dimensions: str = "[countries]") -> str:
    return f"{JOBS}gold:\n  dimensions: {dimensions}\n  models:\n{models}"


def error_of(text: str, base_dir: Path | None = None) -> str:
    with pytest.raises(InvalidArgument) as caught:
        parse_workflow(text, "shop.yaml", base_dir)
    return caught.value.message


def test_the_sample_workflow_has_its_own_models_in_dependency_order(
    sample_workflow: Workflow,
) -> None:
    assert sample_workflow.gold is not None
    spec = sample_workflow.workflow_gold_spec()
    assert spec is not None and list(spec.dimensions) == ["countries"]
    folder = ROOT / "examples/models/customer-data/workflow"
    for model in spec.models:  # read relative to the YAML file, stored inline
        assert model.sql == (folder / f"{model.name}.sql").read_text()
    gold = parse_workflow_gold_spec(spec, sample_workflow.id, [j.id for j in sample_workflow.jobs])
    reads = {m.name: (m.jobs, m.models, m.dimensions) for m in gold.models}
    assert reads == {
        "valid_orders": (["orders"], [], []),
        "revenue_by_country_month": (["customers"], ["valid_orders"], ["countries"]),
        "best_sellers_by_category": (["products"], ["valid_orders"], []),
        "customer_lifetime": (["customers"], ["valid_orders"], []),
    }
    again = Workflow.model_validate(sample_workflow.model_dump(mode="json"))
    assert again == sample_workflow


def test_models_order_by_what_they_read_quoted_job_ids_included() -> None:
    text = with_gold(
        "    - {name: top, sql: 'SELECT * FROM gold.totals LIMIT 1'}\n"
        "    - {name: totals, sql: 'SELECT count(*) AS n FROM silver.\"daily-sales\"'}\n"
    )
    workflow = parse_workflow(text, "shop.yaml")
    spec = workflow.workflow_gold_spec()
    assert spec is not None
    gold = parse_workflow_gold_spec(spec, "shop", ["orders", "customers", "daily-sales"])
    assert [(m.name, m.jobs, m.models) for m in gold.models] == [
        ("totals", ["daily-sales"], []),
        ("top", [], ["totals"]),
    ]


SQL = "      sql: |\n        SELECT o.*\n        FROM silver.orders AS o\n"


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        (
            "    - name: ok\n      sql: SELECT 1 AS x\n    - name: bad\n"
            + SQL
            + "        JOIN silver.refunds AS r USING (id)\n",
            "shop.yaml:15: gold.models[1].sql: line 3: silver.refunds is not a job of workflow "
            "'shop' (jobs: orders, customers, daily-sales)",
        ),
        (
            "    - name: bad\n" + SQL + "        JOIN gold.nowhere USING (id)\n",
            "shop.yaml:13: gold.models[0].sql: line 3: gold.nowhere is not a model of this gold "
            "(models: bad)",
        ),
        (
            "    - {name: a, sql: SELECT * FROM gold.b}\n"
            "    - name: b\n      sql: |\n        SELECT *\n        FROM gold.c\n"
            "    - {name: c, sql: SELECT * FROM gold.a}\n",
            "shop.yaml:17: gold.models[2].sql: line 1: gold.a closes a cycle (a -> b -> c -> a)",
        ),
        (
            "    - {name: a, sql: SELECT * FROM gold.a}\n",
            "shop.yaml:12: gold.models[0].sql: line 1: gold.a is the model itself",
        ),
        (
            # A job of another workflow is no job of this one.
            "    - {name: a, sql: SELECT * FROM silver.customers JOIN silver.tickets USING (id)}\n",
            "shop.yaml:12: gold.models[0].sql: line 1: silver.tickets is not a job of workflow "
            "'shop'",
        ),
        (
            "    - {name: a, sql: SELECT * FROM dim_currencies}\n",
            "shop.yaml:12: gold.models[0].sql: line 1: dim_currencies reads dimension "
            "'currencies', which the gold's dimensions do not list",
        ),
        (
            "    - {name: a, sql: SELECT * FROM orders}\n",
            "shop.yaml:12: gold.models[0].sql: line 1: orders: a workflow model reads only "
            "silver.<job>",
        ),
        (
            "    - {name: a, sql: DROP TABLE silver.orders}\n",
            "shop.yaml:12: gold.models[0].sql: must be a SELECT (WITH ... SELECT is fine), "
            "not DROP",
        ),
        (
            "    - {name: a, sql: SELECT 1}\n    - {name: a, sql: SELECT 2}\n",
            "shop.yaml:13: gold.models[1].name 'a' is used twice",
        ),
        ("    []\n", "gold.models"),
    ],
)
def test_bad_workflow_models_are_refused_at_the_models_line(models: str, expected: str) -> None:
    assert expected in error_of(with_gold(models))


def test_an_sql_file_error_names_the_file_at_its_key(tmp_path: Path) -> None:
    (tmp_path / "refunds.sql").write_text("SELECT *\nFROM silver.refunds\n")
    text = with_gold("    - {name: a, sql_file: refunds.sql}\n")
    assert error_of(text, tmp_path) == (
        "shop.yaml:12: gold.models[0].sql_file 'refunds.sql': line 2: silver.refunds is not "
        "a job of workflow 'shop' (jobs: orders, customers, daily-sales)"
    )
