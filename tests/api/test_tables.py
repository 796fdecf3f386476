"""GET /api/tables, /api/tables/{path}/history and /api/tables/{path}?version=: every
table, its commits and any version's rows; only table paths FlowForge writes are read,
anything else is 400 naming it; the token is needed as on every /api route."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr

from flowforge.errors import InvalidArgument
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from orchestrator.api.app import create_app
from orchestrator.store import Store
from orchestrator.store.database import open_engine
from tests.api.conftest import ApiServer
from tests.delta import commit
from tests.hostile.path_inputs import cases

TOKEN = "tables-token-" + "y" * 20


@pytest.fixture(scope="module")
def http(
    settings: Settings, store: ObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    database = Store(open_engine(f"sqlite:///{tmp_path_factory.mktemp('api') / 'ff.db'}"))
    secured = settings.model_copy(update={"api_token": SecretStr(TOKEN)})
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        ApiServer(create_app(secured, store=database, objects=store)) as url,
        httpx.Client(base_url=url, timeout=30, headers=headers) as client,
    ):
        yield client
    database.close()


@pytest.fixture(scope="module")
def job(settings: Settings) -> JobKey:
    """A job with a gold model table of two versions and a silver quarantine of one."""
    job = JobKey(f"ta-{uuid.uuid4().hex[:8]}", "orders")
    model = TableRef.gold_model(job, "revenue")
    commit(settings, model, {"month": ["2026-01"], "revenue": ["10.50"]}, "run-1", "overwrite")
    commit(settings, model, {"month": ["2026-02"], "revenue": ["7.25"]}, "run-2", "overwrite")
    commit(settings, TableRef.silver_quarantine(job), {"_rule": ["r"]}, "run-2")
    return job


def test_the_token_is_needed(http: httpx.Client, job: JobKey) -> None:
    bare = httpx.Client(base_url=str(http.base_url), timeout=30)
    for path in ("/api/tables", f"/api/tables/gold/{job}/revenue", "/api/tables/x/history"):
        assert bare.get(path).status_code == 401, path


def test_tables_are_listed_with_their_latest_version(http: httpx.Client, job: JobKey) -> None:
    listed = {t["table"]: t for t in http.get("/api/tables").json()}
    model = listed[f"gold/{job}/revenue"]
    assert (model["kind"], model["version"], model["rows"], model["run_id"]) == (
        "gold model",
        1,
        1,
        "run-2",
    )
    side = listed[f"silver/{job.workflow_id}/_quarantine/{job.job_id}"]
    assert (side["kind"], side["version"], side["rows"]) == ("silver quarantine", 0, 1)


def test_history_and_time_travel(http: httpx.Client, job: JobKey) -> None:
    path = f"gold/{job}/revenue"
    history = http.get(f"/api/tables/{path}/history").json()
    assert history["table"] == path
    assert [(c["version"], c["run_id"]) for c in history["items"]] == [(1, "run-2"), (0, "run-1")]
    old = http.get(f"/api/tables/{path}", params={"version": 0}).json()
    assert (old["version"], old["latest_version"], old["current"]) == (0, 1, False)
    assert old["preview"] == [{"month": "2026-01", "revenue": "10.50"}]
    assert old["commit"]["run_id"] == "run-1"
    assert [c["name"] for c in old["columns"]] == ["month", "revenue"]
    latest = http.get(f"/api/tables/{path}", params={"limit": 0}).json()
    assert (latest["version"], latest["current"], latest["preview"]) == (1, True, [])
    encoded = http.get("/api/tables/" + quote(path, safe=""))  # %2F decodes to the same table
    assert encoded.json()["version"] == 1


def test_a_job_or_model_named_history_is_a_table_too(
    http: httpx.Client, settings: Settings
) -> None:
    """`.../history` ends a table path when a job is called history: both routes stay
    unambiguous, since a table path never ends with a table path plus /history."""
    job = JobKey(f"ta-{uuid.uuid4().hex[:8]}", "history")
    ref = TableRef.bronze(job)
    commit(settings, ref, {"a": ["x"]}, "run-h")
    assert http.get(f"/api/tables/{ref.path}").json()["table"] == ref.path
    assert http.get(f"/api/tables/{ref.path}/history").json()["items"][0]["run_id"] == "run-h"


def test_unknown_tables_and_versions_are_404(http: httpx.Client, job: JobKey) -> None:
    missing = http.get("/api/tables/silver/nobody/here")
    assert missing.status_code == 404
    assert "table silver/nobody/here does not exist" in missing.json()["error"]["message"]
    beyond = http.get(f"/api/tables/gold/{job}/revenue", params={"version": 5})
    assert beyond.status_code == 404 and "has no version 5" in beyond.json()["error"]["message"]
    negative = http.get(f"/api/tables/gold/{job}/revenue", params={"version": -1})
    assert negative.status_code == 422


def is_table(path: str) -> bool:
    try:
        TableRef.parse(path)
    except InvalidArgument:
        return False
    return True


SHAPES = [
    "bronze/w",
    "bronze/w/_rejects",
    "bronze/w/_quarantine/j",
    "silver/w/j/extra",
    "gold/w/j",
    "landing/w/j",
    "dimensions",
    "dimensions/a/b",
    "_delta_log/00000000000000000000.json",
    "bronze/w/j/_delta_log",
    "bronze/w/j/",
    "",
]


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p or "empty") for p in SHAPES]
    # Values httpx can send as a URL (the longest never reach any server).
    + [
        pytest.param(f"bronze/w/{v}", id=label)
        for _, label, v in cases(["id"])
        if v and len(quote(v, safe="")) <= 60_000
    ],
)
def test_other_paths_are_400_naming_them(http: httpx.Client, store: ObjectStore, path: str) -> None:
    segments = "/".join(quote(s, safe="").replace(".", "%2E") for s in path.split("/"))
    urls = [f"/api/tables/{segments}"]
    if not is_table(f"{path}/history"):  # e.g. bronze/w/history: a job called history
        urls.append(f"/api/tables/{segments}/history")
    for url in urls:
        answer = http.get(url)
        assert answer.status_code == 400, (url, answer.text[:300])
        assert answer.json()["error"]["message"].startswith("table "), answer.text[:300]
    assert http.get("/healthz").status_code == 200
