"""An execution's previews show the table versions THAT execution committed (time travel),
say which table and version each is and whether it still holds the current rows; 64-bit
integers go out as text."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from orchestrator.api.app import create_app
from orchestrator.store import ExecutionStatus, StepStatus, Store, TableVersion
from orchestrator.store.database import open_engine
from orchestrator.workflows import Workflow
from tests.api.conftest import ApiServer
from tests.delta import commit, table
from tests.orchestrator.conftest import workflow_named

ABOVE_2_53 = 2**53 + 1  # the first integer a JavaScript number cannot hold


@dataclass
class Site:
    http: httpx.Client
    store: Store
    workflow: Workflow


@pytest.fixture
def site(
    settings: Settings, store: ObjectStore, tmp_path: Path, sample_workflow: Workflow
) -> Iterator[Site]:
    database = Store(open_engine(f"sqlite:///{tmp_path / 'ff.db'}"))
    workflow = workflow_named(sample_workflow, f"pv-{uuid.uuid4().hex[:8]}")
    database.save_workflow(workflow)
    with (
        ApiServer(create_app(settings, store=database, objects=store)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield Site(http, database, workflow)
    database.close()


def executed(site: Site, layer: str, versions: list[TableVersion]) -> str:
    """A completed execution whose `layer` step recorded these versions."""
    execution = site.store.create_execution(site.workflow.id, "customers", [layer])
    site.store.start_execution(execution.id)
    site.store.start_step(execution.id, layer, run_id=execution.id)
    site.store.finish_step(execution.id, layer, StepStatus.COMPLETED, tables=versions)
    site.store.finish_execution(execution.id, ExecutionStatus.COMPLETED)
    return execution.id


def test_gold_previews_show_each_executions_own_version(settings: Settings, site: Site) -> None:
    job = JobKey(site.workflow.id, "customers")
    ref = TableRef.gold_model(job, "by_country")
    first_rows = {"country": ["DE", "FR"], "customers": pa.array([ABOVE_2_53, 3], pa.int64())}
    first = executed(site, "gold", [])
    v0 = commit(settings, ref, first_rows, first, mode="overwrite")
    site.store.finish_step(
        first,
        "gold",
        StepStatus.COMPLETED,
        tables=[TableVersion("model", ref.path, v0, "by_country")],
    )
    later_rows = {"country": ["NL"], "customers": pa.array([7], pa.int64())}
    second = executed(site, "gold", [])
    v1 = commit(settings, ref, later_rows, second)  # appended: two files to compact later
    site.store.finish_step(
        second,
        "gold",
        StepStatus.COMPLETED,
        tables=[TableVersion("model", ref.path, v1, "by_country")],
    )

    old = site.http.get(f"/api/executions/{first}/gold").json()
    (item,) = old["items"]
    assert (item["table"], item["version"], item["latest_version"]) == (ref.path, v0, v1)
    assert item["current"] is False and old["current"] is False and old["run_id"] == first
    # The first execution's rows, not the table's current ones; Int64 as exact text.
    assert item["rows"] == 2 and item["columns"] == ["country", "customers"]
    assert item["preview"] == [
        {"country": "DE", "customers": str(ABOVE_2_53)},
        {"country": "FR", "customers": "3"},
    ]

    new = site.http.get(f"/api/executions/{second}/gold").json()
    assert new["current"] is True and new["run_id"] == second
    assert [(i["name"], i["version"], i["current"]) for i in new["items"]] == [
        ("by_country", v1, True)
    ]
    rows = sorted(new["items"][0]["preview"], key=lambda r: r["country"])
    assert [r["country"] for r in rows] == ["DE", "FR", "NL"] and new["items"][0]["rows"] == 3

    # Compaction commits a version that changes no rows: the data is still current.
    table(settings, ref).optimize.compact()
    assert table(settings, ref).version() == v1 + 1
    again = site.http.get(f"/api/executions/{second}/gold").json()
    assert again["current"] is True and again["items"][0]["latest_version"] == v1 + 1


def test_quarantine_previews_read_the_side_table_at_the_recorded_version(
    settings: Settings, site: Site
) -> None:
    job = JobKey(site.workflow.id, "customers")
    side = TableRef.silver_quarantine(job)
    first_version = commit(settings, side, {"_rule": ["r1"], "_reason": ["bad"]}, "run-a")
    first = executed(site, "silver", [TableVersion("side", side.path, first_version)])
    commit(settings, side, {"_rule": ["r2", "r3"], "_reason": ["worse", "worst"]}, "run-b")

    answer = site.http.get(f"/api/executions/{first}/quarantine").json()
    (item,) = answer["items"]
    assert (item["name"], item["table"], item["version"]) == ("quarantine", side.path, 0)
    assert item["rows"] == 1 and item["preview"] == [{"_rule": "r1", "_reason": "bad"}]
    assert item["current"] is False and item["latest_version"] == 1


def test_an_execution_that_recorded_nothing_is_found_by_its_run_id(
    settings: Settings, site: Site
) -> None:
    """Executions from before versions were kept (or migrated by `flowforge migrate`):
    their commit carries their run id."""
    job = JobKey(site.workflow.id, "customers")
    rejects = TableRef.bronze_rejects(job)
    old = executed(site, "bronze", [])
    commit(settings, rejects, {"_reason": ["ragged"]}, old)
    commit(settings, rejects, {"_reason": ["encoding"]}, "a-later-run")
    answer = site.http.get(
        f"/api/executions/{old}/quarantine", params={"layer": "bronze", "limit": 5}
    ).json()
    (item,) = answer["items"]
    assert (item["name"], item["version"], item["current"]) == ("rejects", 0, False)
    assert item["preview"] == [{"_reason": "ragged"}] and answer["run_id"] == old

    unknown = executed(site, "bronze", [])  # committed nothing: the latest is shown
    answer = site.http.get(
        f"/api/executions/{unknown}/quarantine", params={"layer": "bronze"}
    ).json()
    assert answer["current"] is False and answer["run_id"] == "a-later-run"
    assert answer["items"][0]["version"] == 1


def test_a_job_without_output_is_404(site: Site) -> None:
    execution = executed(site, "gold", [])
    answer = site.http.get(f"/api/executions/{execution}/gold")
    assert answer.status_code == 404
    assert f"{site.workflow.id}/customers" in answer.json()["error"]["message"]


def test_the_openapi_document_says_what_a_preview_is(site: Site) -> None:
    document = site.http.get("/openapi.json").json()
    preview = document["components"]["schemas"]["Preview"]["properties"]
    assert "64-bit integers" in preview["preview"]["description"]
    assert {"table", "version", "current", "latest_version"} <= set(preview)
    step = document["components"]["schemas"]["Step"]["properties"]
    assert "tables" in step


def test_a_version_maintenance_removed_is_404_saying_so(settings: Settings, site: Site) -> None:
    """An execution that recorded no versions (from before they were kept) holds none back
    from vacuum: once its files are gone its preview says what removed them."""
    from orchestrator.maintenance import maintain

    job = JobKey(site.workflow.id, "customers")
    ref = TableRef.gold_model(job, "by_country")
    old = executed(site, "gold", [])
    commit(settings, ref, {"country": ["DE"]}, old, mode="overwrite")
    commit(settings, ref, {"country": ["FR"]}, "a-later-run", mode="overwrite")
    no_retention = settings.model_copy(update={"tables_retention_days": 0})
    (done,) = maintain(no_retention, site.store, ObjectStore(settings), [ref])
    assert len(done.files_deleted) == 1 and done.kept_versions == []
    answer = site.http.get(f"/api/executions/{old}/gold")
    assert answer.status_code == 404
    message = answer.json()["error"]["message"]
    assert f"version 0 of table {ref}" in message and "flowforge maintain" in message
