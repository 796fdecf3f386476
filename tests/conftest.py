"""Shared fixtures: one real SeaweedFS per test session, settings pointing at it, helpers."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from flowforge.embedded import EmbeddedS3
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore

ROOT = Path(__file__).resolve().parent.parent


def require(available: bool, missing: str) -> None:
    """A prerequisite of a test: outside CI a missing one skips the test (saying what to
    install); in CI (CI=true) it fails it, so lost coverage never hides as a skip."""
    if available:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"missing prerequisite in CI: {missing}")
    pytest.skip(missing)


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    server = EmbeddedS3(
        tmp_path_factory.mktemp("seaweedfs"),
        access_key="test-access",
        secret_key=secrets.token_urlsafe(16),
        bucket="flowforge-test",
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def settings(s3: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        s3_endpoint_url=s3.endpoint_url,
        s3_access_key_id=s3.access_key,
        s3_secret_access_key=SecretStr(s3.secret_key),
        s3_bucket=s3.bucket,
        s3_max_attempts=2,
        s3_connect_timeout_seconds=2,
        state_dir=tmp_path_factory.mktemp("state"),
        log_format="text",
    )


@pytest.fixture(scope="session")
def store(settings: Settings) -> ObjectStore:
    return ObjectStore(settings)


@pytest.fixture
def job() -> JobKey:
    """A job nobody else uses, so tests never see each other's objects."""
    return JobKey(f"wf-{uuid.uuid4().hex[:10]}", "job")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ONE Prefect server for the whole session (its own PREFECT_HOME and SQLite), used by
    every test that runs a flow. Prefect's ephemeral API shares a SQLite file between
    processes and fails with "database is locked" under concurrent runs."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from orchestrator.prefect_server import PrefectServer, flush_clients

    home = tmp_path_factory.mktemp("prefect")
    with (
        PrefectServer(home) as server,
        temporary_settings(
            updates={PREFECT_API_URL: server.api_url, PREFECT_HOME: home / "client"}
        ),
    ):
        try:
            yield server.api_url
        finally:
            flush_clients()
