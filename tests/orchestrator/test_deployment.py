"""How the served deployment's runner is set up: how often it polls, what its flow runs
start with."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_CLOUD_API_URL,
    PREFECT_RUNNER_POLL_FREQUENCY,
    temporary_settings,
)

from orchestrator.deployment import POLL_SECONDS, WARM_MODULES, poll_seconds

LOCAL_SERVER = "http://127.0.0.1:4200/api"


@pytest.fixture(autouse=True)
def _no_poll_frequency_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_RUNNER_POLL_FREQUENCY", raising=False)


def test_a_self_hosted_server_is_polled_several_times_a_second() -> None:
    with temporary_settings(updates={PREFECT_API_URL: LOCAL_SERVER}):
        assert poll_seconds() == POLL_SECONDS < 1


def test_prefect_cloud_keeps_prefects_poll_frequency() -> None:
    """Every request to Prefect Cloud counts toward the account's rate limit."""
    cloud = f"{PREFECT_CLOUD_API_URL.value()}/accounts/a/workspaces/w"
    with temporary_settings(updates={PREFECT_API_URL: cloud}):
        assert poll_seconds() == PREFECT_RUNNER_POLL_FREQUENCY.value() >= 10


def test_an_explicit_poll_frequency_wins() -> None:
    with temporary_settings(
        updates={PREFECT_API_URL: LOCAL_SERVER, PREFECT_RUNNER_POLL_FREQUENCY: 3}
    ):
        assert poll_seconds() == 3


def test_an_explicit_poll_frequency_from_the_environment_wins() -> None:
    env = {**os.environ, "PREFECT_API_URL": LOCAL_SERVER, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    code = "from orchestrator.deployment import poll_seconds; print(poll_seconds())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert float(out.stdout) == 2


def test_the_warm_modules_all_import() -> None:
    """The fork server skips a module it cannot import without a word (flow runs would only
    start slower): a Prefect upgrade that moves one shows here."""
    code = "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]"
    subprocess.run([sys.executable, "-c", code, *WARM_MODULES], check=True)
