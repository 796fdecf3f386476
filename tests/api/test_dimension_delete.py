"""DELETE /api/dimensions/{name} and `flowforge dimensions rm`: refused (409, naming the
workflows) while a stored workflow lists the dimension; then every version goes, the list
no longer shows it, and a second delete is 404."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from cli.main import app
from flowforge.dimensions import upload_dimension
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.store import Store
from orchestrator.workflows import Workflow
from tests.api.conftest import api_alone
from tests.orchestrator.conftest import sample_workflow  # noqa: F401  (fixture)

TOKEN = "dimension-token-" + uuid.uuid4().hex
CSV = b"code,name\nDE,Germany\nFR,France\n"


@pytest.fixture
def http(
    settings: Settings, store: ObjectStore, tmp_path: Path
) -> Iterator[tuple[httpx.Client, Store]]:
    with (
        api_alone(settings, store, tmp_path, api_token=SecretStr(TOKEN)) as (url, database),
        httpx.Client(
            base_url=url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client,
    ):
        yield client, database


def test_a_dimension_a_workflow_lists_is_kept_then_deleted(
    http: tuple[httpx.Client, Store],
    store: ObjectStore,
    sample_workflow: Workflow,  # noqa: F811
) -> None:
    client, database = http
    name = f"dim_{uuid.uuid4().hex[:8]}"
    upload_dimension(store, name, CSV, "countries.csv")
    upload_dimension(store, name, CSV + b"IT,Italy\n", "countries.csv")  # two versions
    users = [f"dim-user-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for workflow_id in users:
        database.save_workflow(
            sample_workflow.model_copy(update={"id": workflow_id, "dimensions": [name]})
        )
    refused = client.delete(f"/api/dimensions/{name}")
    assert refused.status_code == 409
    message = refused.json()["error"]["message"]
    assert all(workflow_id in message for workflow_id in users) and name in message
    assert name in {d["name"] for d in client.get("/api/dimensions").json()}

    for workflow_id in users:
        database.delete_workflow(workflow_id)
    assert client.delete(f"/api/dimensions/{name}").status_code == 204
    assert name not in {d["name"] for d in client.get("/api/dimensions").json()}
    assert list(store.list(f"dimensions/{name}/")) == []
    missing = client.delete(f"/api/dimensions/{name}")
    assert missing.status_code == 404 and name in missing.json()["error"]["message"]
    assert client.delete("/api/dimensions/bad..name").status_code == 400


def test_the_cli_removes_a_dimension_after_asking(
    settings: Settings, store: ObjectStore, tmp_path: Path
) -> None:
    name = f"dim_{uuid.uuid4().hex[:8]}"
    upload_dimension(store, name, CSV, "countries.csv")
    secret = settings.s3_secret_access_key.get_secret_value()  # type: ignore[union-attr]
    env = {
        "FLOWFORGE_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "FLOWFORGE_S3_ACCESS_KEY_ID": settings.s3_access_key_id or "",
        "FLOWFORGE_S3_SECRET_ACCESS_KEY": secret,
        "FLOWFORGE_S3_BUCKET": settings.s3_bucket,
        "FLOWFORGE_STATE_DIR": str(tmp_path),
    }
    from flowforge.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    try:
        kept = runner.invoke(app, ["dimensions", "rm", name], input="n\n", env=env)
        assert kept.exit_code == 1 and next(store.list(f"dimensions/{name}/"), None)
        done = runner.invoke(app, ["dimensions", "rm", name, "--yes"], env=env)
        assert done.exit_code == 0, done.output
        assert f"deleted dimension {name}" in done.output
        assert next(store.list(f"dimensions/{name}/"), None) is None
        again = runner.invoke(app, ["dimensions", "rm", name, "--yes"], env=env)
        assert again.exit_code == 1 and f"there is no dimension {name!r}" in again.output
    finally:
        get_settings.cache_clear()
