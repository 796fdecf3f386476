"""Fixtures for the orchestrator: the executions store on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from flowforge.dimensions import upload_dimension_file
from flowforge.layout import JobKey, landing_prefix
from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.flow import medallion
from orchestrator.runner import InProcessRunner
from orchestrator.store import Store
from orchestrator.store.database import open_engine
from orchestrator.workflows import Workflow, load_workflow_file
from services.layers import create_server

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_WORKFLOW = ROOT / "examples" / "workflows" / "customer-data.yaml"
# The PostgreSQL server of this machine (trust auth); each session uses its own schema.
POSTGRES_URL = os.environ.get(
    "FLOWFORGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str]:
    """A schema of its own in the `test` database, so parallel sessions never collide."""
    schema = f"ff_{uuid.uuid4().hex[:12]}"
    # pool_pre_ping: the PostgreSQL restart test leaves pooled connections dead.
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_schema_url: str
) -> Iterator[Store]:
    """The store on each backend (migrated on open), holding the sample workflow."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'flowforge.db'}"
    else:
        url = postgres_schema_url
    store = Store(open_engine(url))
    yield store
    store.close()


@pytest.fixture(scope="session")
def sample_workflow() -> Workflow:
    return load_workflow_file(SAMPLE_WORKFLOW)


def workflow_named(sample: Workflow, workflow_id: str) -> Workflow:
    """The sample workflow under another id (tests on a shared database stay apart)."""
    return sample.model_copy(update={"id": workflow_id})


@dataclass
class Stack:
    """The three services on loopback, settings pointing the flow at them, the store."""

    settings: Settings
    store: Store
    object_store: ObjectStore
    servers: dict[str, LayerServer]

    def flow(self, settings: Settings | None = None, **parameters: Any) -> dict[str, Any]:
        """Runs the medallion flow here (an InProcessRunner with these settings, or the
        stack's) and returns its result."""
        runner = InProcessRunner(settings or self.settings, self.store)
        return runner.run(medallion, **parameters)  # type: ignore[no-any-return]

    def runner(self) -> InProcessRunner:
        return InProcessRunner(self.settings, self.store)

    def restart(self, layer: str) -> None:
        """Starts `layer` again on the port it had (after a test stopped it)."""
        port = self.servers[layer].port
        deadline = time.monotonic() + 10
        while True:
            try:
                server = create_server(layer, self.settings, f"127.0.0.1:{port}", self.object_store)
                break
            except RuntimeError:  # the port is not free again yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.servers[layer] = server

    def add_workflow(self, sample: Workflow, **changes: object) -> Workflow:
        """The sample workflow under a fresh id, its CSVs landed: tests never share data."""
        workflow = workflow_named(sample, f"cd-{uuid.uuid4().hex[:8]}")
        workflow = workflow.model_copy(update=changes)
        self.store.save_workflow(workflow)
        for job in workflow.jobs:
            csv = ROOT / "examples" / "data" / f"{job.id}.csv"
            if csv.exists():
                key = landing_prefix(JobKey(workflow.id, job.id)) + csv.name
                self.object_store.put_bytes(key, csv.read_bytes(), content_type="text/csv")
        return workflow


@pytest.fixture(scope="session")
def stack(
    settings: Settings, store: ObjectStore, postgres_schema_url: str, prefect_api: str
) -> Iterator[Stack]:
    """Real bronze, silver and gold servers, the store on PostgreSQL and a Prefect server."""
    servers = {
        layer: create_server(layer, settings, "127.0.0.1:0", store)
        for layer in ("bronze", "silver", "gold")
    }
    flow_settings = settings.model_copy(
        update={
            "database_url": SecretStr(postgres_schema_url),
            "bronze_address": f"127.0.0.1:{servers['bronze'].port}",
            "silver_address": f"127.0.0.1:{servers['silver'].port}",
            "gold_address": f"127.0.0.1:{servers['gold'].port}",
            "layer_retry_delays_seconds": [1.0, 1.0, 2.0, 2.0, 2.0],
            "layer_deadline_seconds": 60.0,
        }
    )
    upload_dimension_file(store, "countries", ROOT / "examples" / "dimensions" / "countries.csv")
    running = Stack(flow_settings, Store.open(flow_settings), store, servers)
    try:
        yield running
    finally:
        running.store.close()
        for server in running.servers.values():
            server.stop(0)
