"""Fixtures for the orchestrator: the executions store on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from flowforge.settings import Settings
from orchestrator.store import Store
from orchestrator.store.database import open_engine
from orchestrator.workflows import Workflow, load_workflow_file

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
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
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


def sqlite_settings(settings: Settings, folder: Path) -> Settings:
    return settings.model_copy(update={"state_dir": folder, "database_url": None})
