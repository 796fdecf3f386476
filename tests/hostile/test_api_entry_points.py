"""Every HTTP API entry point that takes an ID or a file name refuses path-like input with
a JSON error (400, or 404 when the decoded path matches no route), writes nothing, and
keeps serving. Values from tests/hostile/path_inputs.py."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.api.app import create_app
from orchestrator.store import Store
from orchestrator.store.database import open_engine
from orchestrator.workflows import parse_workflow
from tests.api.conftest import ApiServer
from tests.hostile.path_inputs import cases

WORKFLOW = "id: hostile-api\njobs:\n  - id: job\n"
REFUSED = {400, 404, 405, 414, 415, 422}


@pytest.fixture(scope="module")
def client(settings: Settings, store: ObjectStore, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[httpx.Client]:  # fmt: skip
    database = Store(open_engine(f"sqlite:///{tmp_path_factory.mktemp('api') / 'ff.db'}"))
    database.save_workflow(parse_workflow(WORKFLOW))
    with (
        ApiServer(create_app(settings, store=database, objects=store)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield http
    database.close()


def refused(response: httpx.Response) -> None:
    assert response.status_code in REFUSED, (response.status_code, response.text[:300])
    if response.headers.get("content-type", "").startswith("application/json"):
        assert response.json()["error"]["status"] == response.status_code


def keys(store: ObjectStore, prefix: str) -> list[str]:
    return [o.key for o in store.list(prefix)]


@pytest.mark.parametrize("value", [pytest.param(v, id=label) for _, label, v in cases(["id"])])
def test_path_ids_are_refused(client: httpx.Client, store: ObjectStore, value: str) -> None:
    # Dots encoded too: a client would resolve "." and ".." segments before sending.
    segment = quote(value, safe="").replace(".", "%2E")
    if len(segment) > 60_000:
        pytest.skip("httpx refuses to send a URL this long (so would any server)")
    before = keys(store, "dimensions/") + keys(store, "landing/")
    refused(client.get(f"/api/workflows/{segment}"))
    refused(client.get(f"/api/executions/{segment}"))
    refused(client.get(f"/api/executions/{segment}/gold"))
    refused(client.post(f"/api/executions/{segment}/cancel"))
    refused(client.post(f"/api/workflows/{segment}/jobs/job/executions", json={}))
    refused(client.post(f"/api/workflows/hostile-api/jobs/{segment}/executions", json={}))
    csv = [("files", ("a.csv", b"a\n1\n", "text/csv"))]
    refused(client.post(f"/api/workflows/{segment}/jobs/job/files", files=csv))
    refused(client.put(f"/api/dimensions/{segment}", files={"file": ("d.csv", b"a\n1\n")}))
    if value:  # an empty filter is no filter
        refused(client.get("/api/executions", params={"workflow_id": value}))
    assert keys(store, "dimensions/") + keys(store, "landing/") == before
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("value", [pytest.param(v, id=label) for _, label, v in cases(["file"])])
def test_upload_file_names_are_refused(
    client: httpx.Client, store: ObjectStore, value: str
) -> None:
    for name in (value, value + ".csv"):
        files = [("files", (name, b"a\n1\n", "text/csv"))]
        response = client.post("/api/workflows/hostile-api/jobs/job/files", files=files)
        assert response.status_code in (400, 415), response.text[:300]
        dimension = client.put("/api/dimensions/hostile", files={"file": (name, b"a\n1\n")})
        assert dimension.status_code in (400, 415), dimension.text[:300]
    assert keys(store, "landing/hostile-api/") == []
    assert keys(store, "dimensions/hostile/") == []


def test_a_plain_name_is_accepted(client: httpx.Client, store: ObjectStore) -> None:
    """The control case: the same requests with a good name succeed."""
    files = [("files", ("orders-2026.11.csv", b"a\n1\n", "text/csv"))]
    response = client.post("/api/workflows/hostile-api/jobs/job/files", files=files)
    assert response.status_code == 201, response.text
    assert keys(store, "landing/hostile-api/") == ["landing/hostile-api/job/orders-2026.11.csv"]
    store.delete_prefix("landing/hostile-api/")
