"""The API over real HTTP: uvicorn on a free port in a thread, in front of the real stack
(SeaweedFS, the three services, PostgreSQL, a Prefect server and a served deployment)."""

from __future__ import annotations

import contextlib
import contextvars
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from pydantic import SecretStr

from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.api.app import create_app
from orchestrator.store import Store
from orchestrator.store.database import open_engine
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import (  # noqa: F401  (fixtures)
    ROOT,
    Stack,
    postgres_schema_url,
    sample_workflow,
    stack,
)
from tests.orchestrator.test_cli import _wait_for_deployment, env_of

TOKEN = "test-token-" + "x" * 20
UPLOAD_MAX_MB = 1


@dataclass
class Api:
    url: str
    client: httpx.Client  # sends the token
    stack: Stack


class ApiServer:
    """uvicorn serving `app` on 127.0.0.1 and a free port, in a thread of this process."""

    def __init__(self, app: object) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",  # type: ignore[arg-type]
            timeout_graceful_shutdown=1,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        # The thread keeps this context: Prefect's settings (its API URL) come with it.
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self.server.run,), daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@contextlib.contextmanager
def api_alone(
    settings: Settings, objects: ObjectStore, folder: Path, **changes: Any
) -> Iterator[tuple[str, Store]]:
    """The API by itself (no Prefect, no services) over a SQLite store in `folder` and the
    session's SeaweedFS, with `changes` to its settings: its URL and its store."""
    database = Store(open_engine(f"sqlite:///{folder / 'flowforge.db'}"))
    app = create_app(settings.model_copy(update=changes), store=database, objects=objects)
    try:
        with ApiServer(app) as url:
            yield url, database
    finally:
        database.close()


@pytest.fixture(scope="package")
def served(
    stack: Stack,  # noqa: F811
    prefect_api: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """`flowforge serve deployment` (as the compose worker runs it) against this stack; its
    log file. Package scope: it stops before tests/orchestrator serves the same deployment
    name."""
    home = tmp_path_factory.mktemp("api-runner")
    log = (home / "runner.log").open("wb")
    env = {
        **os.environ,
        **env_of(stack.settings),
        "PREFECT_API_URL": prefect_api,
        "PREFECT_HOME": str(home),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",  # pick up triggered runs within a second
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "deployment"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_deployment(process, home / "runner.log")
        yield home / "runner.log"
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.fixture(scope="package")
def api(stack: Stack, served: Path) -> Iterator[Api]:  # noqa: F811
    settings = stack.settings.model_copy(
        update={
            "api_token": SecretStr(TOKEN),
            "api_upload_max_mb": UPLOAD_MAX_MB,
            "api_reconcile_seconds": 1.0,
            # test_concurrent_requests holds more uploads at once than the default cap (8)
            "api_max_concurrent_uploads": 64,
            # test_automation: files put into S3 directly are found within a second or two,
            # a failed webhook call is retried a second later.
            "landing_scan_seconds": 1.0,
            "notify_retry_delays_seconds": [1.0],
            "public_url": "http://flowforge.example:8000",
        }
    )
    app = create_app(settings, store=stack.store, objects=stack.object_store)
    with ApiServer(app) as url:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            yield Api(url, client, stack)


def sample_yaml(workflow: Workflow) -> str:
    """A workflow as the YAML the API takes (SQL inline, as the sample's sql_files read)."""
    return yaml.safe_dump(workflow.model_dump(mode="json", exclude_none=True), sort_keys=False)


def applied(api: Api, sample: Workflow) -> Workflow:
    """The sample workflow under a fresh id, applied through the API (no data landed)."""
    workflow = sample.model_copy(update={"id": f"api-{uuid.uuid4().hex[:8]}"})
    response = api.client.post(
        "/api/workflows",
        content=sample_yaml(workflow),
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 200, response.text
    return workflow


def wait_until_ended(api: Api, execution_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    execution: dict[str, Any] = {"status": "unreadable"}
    while time.monotonic() < deadline:
        response = api.client.get(f"/api/executions/{execution_id}")
        if response.status_code == 503:  # the store restarting (another test may do that)
            time.sleep(0.5)
            continue
        execution = response.json()
        if execution["status"] not in ("PENDING", "RUNNING"):
            return execution  # type: ignore[no-any-return]
        time.sleep(0.3)
    raise AssertionError(f"execution {execution_id} still {execution['status']} after {timeout}s")
