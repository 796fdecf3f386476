"""GoldService.BuildWorkflow over a real channel: a workflow's models over its jobs' silver,
in dependency order, committed all or none, with failed jobs' readers skipped and lineage."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import grpc
import polars as pl
import pytest

from flowforge import tables
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from tests.bronze.test_grpcurl import grpcurl
from tests.gold.conftest import (
    Committed,
    build_workflow,
    commit_dimension,
    commit_silver,
    read_model,
    serving,
)

JOBS = ["orders", "customers", "daily-sales"]
ORDERS = pl.DataFrame(
    {
        "order_id": [1, 2, 3, 4, 5],
        "customer_id": [10, 10, 20, 30, 99],
        "amount": [Decimal(a) for a in ("5.00", "7.50", "1.25", "9.00", "2.00")],
    },
    schema_overrides={"amount": pl.Decimal(12, 2)},
)
CUSTOMERS = pl.DataFrame({"customer_id": [10, 20, 30], "country": ["DE", "FR", "DE"]})
DAILY = pl.DataFrame({"day": [1, 2], "sales": [3, 4]})
COUNTRIES = pl.DataFrame({"code": ["DE", "FR"], "name": ["Germany", "France"]})

MODELS = {
    # Listed before the model it reads: the service runs it after.
    "top_country": "SELECT name, revenue FROM gold.by_country ORDER BY revenue DESC LIMIT 1",
    "by_country": """
        SELECT c.name, sum(o.amount) AS revenue, count(*) AS orders
        FROM silver.orders AS o
        JOIN silver.customers AS k USING (customer_id)
        JOIN dim_{dim} AS c ON c.code = k.country
        GROUP BY ALL ORDER BY c.name""",
    "sales": 'SELECT sum(sales) AS sales FROM silver."daily-sales"',
}


@pytest.fixture
def workflow(settings: Settings) -> dict[str, Committed | str]:
    """A workflow's three jobs' silver (each by a run of its own) and a dimension."""
    workflow_id = f"wf-{uuid.uuid4().hex[:10]}"
    dim = f"countries_{uuid.uuid4().hex[:8]}"
    found: dict[str, Committed | str] = {"id": workflow_id, "dim": dim}
    for job, frame in zip(JOBS, (ORDERS, CUSTOMERS, DAILY), strict=True):
        found[job] = commit_silver(
            settings, JobKey(workflow_id, job), frame, run_id=f"exec-{job}-{uuid.uuid4().hex[:6]}"
        )
    found["countries"] = commit_dimension(settings, dim, COUNTRIES)
    return found


def models(workflow: dict[str, Committed | str]) -> dict[str, str]:
    return {name: sql.format(dim=workflow["dim"]) for name, sql in MODELS.items()}


def expected_by_country() -> list[dict[str, object]]:
    joined = ORDERS.join(CUSTOMERS, on="customer_id").join(
        COUNTRIES.rename({"code": "country"}), on="country"
    )
    return (
        joined.group_by("name")
        .agg(pl.col("amount").sum().alias("revenue"), pl.len().cast(pl.Int64).alias("orders"))
        .sort("name")
        .to_dicts()
    )


def workflow_files(store: ObjectStore, workflow_id: str) -> set[str]:
    return {
        o.key for o in store.list(f"gold/{workflow_id}/_workflow/") if "/_delta_log/" not in o.key
    }


def test_models_run_in_dependency_order_and_commit_with_their_lineage(
    gold, settings: Settings, workflow
) -> None:
    wid = workflow["id"]
    result = build_workflow(
        gold, wid, models(workflow), JOBS, run_id="wf-run-1", dimensions=[workflow["dim"]]
    )
    by_country = expected_by_country()
    assert read_model(settings, result, "by_country").to_dicts() == by_country
    top = max(by_country, key=lambda r: r["revenue"])
    assert read_model(settings, result, "top_country").to_dicts() == [
        {"name": top["name"], "revenue": top["revenue"]}
    ]
    assert read_model(settings, result, "sales").item() == DAILY["sales"].sum()

    assert [m.name for m in result.models] == ["by_country", "top_country", "sales"]
    assert {m.name: m.status for m in result.models} == dict.fromkeys(MODELS, "BUILT")
    assert {m.name: list(m.depends_on) for m in result.models} == {
        "by_country": [],
        "top_country": ["by_country"],
        "sales": [],
    }
    assert result.table == f"gold/{wid}/_workflow"
    for model in result.models:
        assert model.table == f"gold/{wid}/_workflow/{model.name}"
        table = tables.require(settings, TableRef(model.table), model.name)
        commit = tables.find_commit(table, "wf-run-1")
        assert commit is not None and commit.version == model.version == table.version()

    # Lineage: which silver execution of which job and which dimension version each read.
    orders, customers, daily = (workflow[j] for j in JOBS)
    countries = workflow["countries"]

    def silver_input(job: str, committed: Committed) -> tuple[str, int, str, str, str]:
        return (committed.ref.path, committed.version, committed.run_id, job, "")

    dimension = (countries.ref.path, countries.version, countries.run_id, "", workflow["dim"])
    lineage = {
        m.name: [(i.table, i.version, i.run_id, i.job_id, i.dimension) for i in m.inputs]
        for m in result.models
    }
    direct = [silver_input("orders", orders), silver_input("customers", customers), dimension]
    assert lineage["by_country"] == direct
    (by_country_model,) = [m for m in result.models if m.name == "by_country"]
    assert lineage["top_country"] == [
        (by_country_model.table, by_country_model.version, "wf-run-1", "", ""),
        *direct,
    ]
    assert lineage["sales"] == [silver_input("daily-sales", daily)]
    assert result.rows_in == ORDERS.height + CUSTOMERS.height + DAILY.height


def test_a_failed_job_skips_the_models_that_read_it_and_the_others_run(
    gold, settings: Settings, store: ObjectStore, workflow
) -> None:
    wid, dim = workflow["id"], [workflow["dim"]]
    first = build_workflow(gold, wid, models(workflow), JOBS, run_id="before", dimensions=dim)
    versions = {m.name: m.version for m in first.models}
    commit_silver(settings, JobKey(wid, "daily-sales"), DAILY.with_columns(pl.col("sales") * 10))

    second = build_workflow(
        gold, wid, models(workflow), JOBS, failed_jobs=("customers",), run_id="after",
        dimensions=dim,
    )  # fmt: skip
    status = {m.name: (m.status, m.reason) for m in second.models}
    assert status["by_country"] == (
        "SKIPPED",
        "reads silver.customers, whose job failed in this run",
    )
    assert status["top_country"] == (
        "SKIPPED",
        "reads gold.by_country, which was skipped (reads silver.customers, whose job failed "
        "in this run)",
    )
    assert status["sales"] == ("BUILT", "")
    assert read_model(settings, second, "sales").item() == DAILY["sales"].sum() * 10
    # The skipped models' tables keep the version the earlier run committed.
    for name in ("by_country", "top_country"):
        table = tables.require(settings, TableRef.workflow_model(wid, name), name)
        assert table.version() == versions[name]
        assert tables.find_commit(table, "after") is None
    assert any("model 'by_country' skipped" in w for w in second.warnings)


def test_a_failing_model_leaves_every_model_as_it_was(
    gold, channel, settings: Settings, store: ObjectStore, workflow
) -> None:
    wid, dim = workflow["id"], [workflow["dim"]]
    first = build_workflow(gold, wid, models(workflow), JOBS, run_id="good", dimensions=dim)
    files = workflow_files(store, wid)
    broken = models(workflow) | {
        "sales": "SELECT CAST('x' || sales AS INTEGER) AS n\nFROM silver.\"daily-sales\""
    }
    with pytest.raises(grpc.RpcError) as caught:
        build_workflow(gold, wid, broken, JOBS, run_id="bad", dimensions=dim)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("model 'sales': Conversion Error")
    for model in first.models:  # by_country and top_country had been built: not committed
        table = tables.require(settings, TableRef(model.table), model.name)
        assert table.version() == model.version
    assert workflow_files(store, wid) == files  # none of the failed build's files stay
    assert serving(channel)


def test_a_repeated_run_id_returns_the_committed_result(gold, settings: Settings, workflow) -> None:
    wid, dim = workflow["id"], [workflow["dim"]]
    first = build_workflow(gold, wid, models(workflow), JOBS, run_id="same", dimensions=dim)
    again = build_workflow(gold, wid, models(workflow), JOBS, run_id="same", dimensions=dim)
    assert again.reused and not first.reused
    assert [(m.name, m.table, m.version, m.preview_json, len(m.inputs)) for m in again.models] == [
        (m.name, m.table, m.version, m.preview_json, len(m.inputs)) for m in first.models
    ]


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (
            {"a": "SELECT *\nFROM silver.orders\nJOIN silver.refunds USING (order_id)"},
            "spec.models[0].sql: line 3: silver.refunds is not a job of workflow '{wid}' "
            "(jobs: orders, customers, daily-sales)",
        ),
        (
            {"a": "SELECT 1 AS x", "b": "SELECT * FROM gold.c"},
            "spec.models[1].sql: line 1: gold.c is not a model of this gold (models: a, b)",
        ),
        (
            {"a": "SELECT * FROM gold.b", "b": "SELECT *\nFROM gold.a"},
            "spec.models[1].sql: line 2: gold.a closes a cycle (a -> b -> a)",
        ),
        ({"a": "SELECT * FROM gold.a"}, "spec.models[0].sql: line 1: gold.a is the model itself"),
        (
            {"a": "SELECT * FROM dim_nowhere"},
            "spec.models[0].sql: line 1: dim_nowhere reads dimension 'nowhere', which the gold's "
            "dimensions do not list",
        ),
        ({"a": "SELECT * FROM silver"}, "spec.models[0].sql: line 1: silver: a workflow model"),
        ({"a": "SELEC 1"}, "spec.models[0].sql: Parser Error: syntax error"),
        ({}, "spec.models is empty"),
    ],
)
def test_bad_workflow_specs_are_refused_naming_the_model_the_table_and_the_line(
    gold, workflow, models: dict[str, str], message: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        build_workflow(gold, workflow["id"], models, JOBS)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message.format(wid=workflow["id"]) in caught.value.details()


def test_a_failed_job_that_is_not_a_job_is_refused(gold, workflow) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        build_workflow(gold, workflow["id"], {"a": "SELECT 1 AS x"}, JOBS, failed_jobs=("nope",))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "failed_jobs[0] 'nope' is not one of the workflow's jobs" in caught.value.details()


def test_grpcurl_calls_build_workflow(gold_server, settings: Settings, workflow) -> None:
    request = {
        "workflowId": workflow["id"],
        "runId": "from-grpcurl",
        "jobs": JOBS,
        "spec": {"models": [{"name": "n", "sql": "SELECT count(*) AS n FROM silver.orders"}]},
    }
    called = grpcurl(
        "-d", json.dumps(request), f"127.0.0.1:{gold_server.port}",
        "flowforge.v1.GoldService/BuildWorkflow",
    )  # fmt: skip
    assert called.returncode == 0, called.stderr
    (model,) = json.loads(called.stdout)["models"]
    assert (model["name"], model["status"], model["table"]) == (
        "n",
        "BUILT",
        f"gold/{workflow['id']}/_workflow/n",
    )
    assert model["inputs"][0]["run_id"] == workflow["orders"].run_id
