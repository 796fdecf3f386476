"""Every HTTP API entry point that takes an ID or a file name refuses path-like input with
a JSON error, writes nothing, and keeps serving. An ID is refused by its own check: 400
naming the field. Only a value holding a '/' (or an empty one) never reaches the check:
decoded, the path matches no API route (404; 405 for a method the UI's static files, mounted
at /, do not serve). Values from tests/hostile/path_inputs.py."""

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
from tests.hostile.path_inputs import MAX_ID_CHARS, cases

WORKFLOW = "id: hostile-api\njobs:\n  - id: job\n"
UNKNOWN = "no-such-id"  # a valid ID that names nothing


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


def refused(response: httpx.Response, field: str, value: str) -> None:
    """400 naming `field`, or, for a value that leaves the route unmatched, 404/405."""
    unmatched = "/" in value or not value
    expected = {"GET": 404}.get(response.request.method, 405) if unmatched else 400
    where = f"{response.request.method} {response.request.url.path[:120]}"
    assert response.status_code == expected, (where, response.status_code, response.text[:300])
    error = response.json()["error"]
    assert error["status"] == expected
    if expected == 400:
        assert error["message"].startswith(f"{field} "), (where, error["message"][:200])


def keys(store: ObjectStore, prefix: str) -> list[str]:
    return [o.key for o in store.list(prefix)]


def as_segment(value: str) -> str:
    # Dots encoded too: a client would resolve "." and ".." segments before sending.
    return quote(value, safe="").replace(".", "%2E")


# httpx refuses to send a URL longer than this (so would any server): such values cannot
# reach the API as a path segment at all.
SENDABLE = [(label, v) for _, label, v in cases(["id"]) if len(as_segment(v)) <= 60_000]


@pytest.mark.parametrize("value", [pytest.param(v, id=label) for label, v in SENDABLE])
def test_path_ids_are_refused(client: httpx.Client, store: ObjectStore, value: str) -> None:
    segment = as_segment(value)
    before = keys(store, "dimensions/") + keys(store, "landing/")
    refused(client.get(f"/api/workflows/{segment}"), "workflow_id", value)
    refused(client.get(f"/api/executions/{segment}"), "execution_id", value)
    refused(client.get(f"/api/executions/{segment}/gold"), "execution_id", value)
    refused(client.post(f"/api/executions/{segment}/cancel"), "execution_id", value)
    trigger = client.post(f"/api/workflows/{segment}/jobs/job/executions", json={})
    refused(trigger, "workflow_id", value)
    trigger = client.post(f"/api/workflows/hostile-api/jobs/{segment}/executions", json={})
    refused(trigger, "job_id", value)
    csv = [("files", ("a.csv", b"a\n1\n", "text/csv"))]
    upload = client.post(f"/api/workflows/{segment}/jobs/job/files", files=csv)
    refused(upload, "workflow_id", value)
    upload = client.post(f"/api/workflows/hostile-api/jobs/{segment}/files", files=csv)
    refused(upload, "job_id", value)
    dimension = client.put(f"/api/dimensions/{segment}", files={"file": ("d.csv", b"a\n1\n")})
    refused(dimension, "name", value)
    if value:  # an empty filter is no filter
        listed = client.get("/api/executions", params={"workflow_id": value})
        if len(value) > MAX_ID_CHARS:  # the documented maxLength, checked by FastAPI
            assert listed.status_code == 422 and "workflow_id" in listed.text, listed.text[:300]
        else:
            refused(listed, "workflow_id", value.replace("/", "_"))  # a query: no route issue
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


def test_a_valid_unknown_id_is_404_naming_it(client: httpx.Client, store: ObjectStore) -> None:
    """The control case: the same requests with a valid ID that names nothing get past the
    ID check to the store, which answers 404 naming it (a dimension name is created)."""
    csv = [("files", ("a.csv", b"a\n1\n", "text/csv"))]
    answers = [
        client.get(f"/api/workflows/{UNKNOWN}"),
        client.get(f"/api/executions/{UNKNOWN}"),
        client.get(f"/api/executions/{UNKNOWN}/gold"),
        client.post(f"/api/executions/{UNKNOWN}/cancel"),
        client.post(f"/api/workflows/{UNKNOWN}/jobs/job/executions", json={}),
        client.post(f"/api/workflows/hostile-api/jobs/{UNKNOWN}/executions", json={}),
        client.post(f"/api/workflows/{UNKNOWN}/jobs/job/files", files=csv),
        client.post(f"/api/workflows/hostile-api/jobs/{UNKNOWN}/files", files=csv),
    ]
    for response in answers:
        where = f"{response.request.method} {response.request.url.path}"
        assert response.status_code == 404, (where, response.text[:300])
        assert f"'{UNKNOWN}'" in response.json()["error"]["message"], where
    listed = client.get("/api/executions", params={"workflow_id": UNKNOWN})
    assert (listed.status_code, listed.json()["total"]) == (200, 0)
    assert keys(store, f"landing/{UNKNOWN}/") + keys(store, "landing/hostile-api/") == []
    created = client.put(f"/api/dimensions/{UNKNOWN}", files={"file": ("d.csv", b"a\n1\n")})
    assert created.status_code == 200, created.text
    assert created.json()["name"] == UNKNOWN
    store.delete_prefix(f"dimensions/{UNKNOWN}/")


@pytest.mark.parametrize("name", ["x..csv", "a..b.csv", "x...csv", "..x.csv"])
def test_file_names_with_dots_in_a_row_are_refused(
    client: httpx.Client, store: ObjectStore, name: str
) -> None:
    """The documented rule is single dots: 'x..csv' (stem 'x.') once got through."""
    files = [("files", (name, b"a\n1\n", "text/csv"))]
    response = client.post("/api/workflows/hostile-api/jobs/job/files", files=files)
    assert response.status_code == 400, response.text[:300]
    assert f"file name {name!r} is not allowed" in response.json()["error"]["message"]
    dimension = client.put("/api/dimensions/hostile", files={"file": (name, b"a\n1\n")})
    assert dimension.status_code == 400, dimension.text[:300]
    assert keys(store, "landing/hostile-api/") == []
    assert keys(store, "dimensions/hostile/") == []
