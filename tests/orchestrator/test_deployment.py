"""How the served deployment's runner is set up: how often it polls, what its flow runs
start with."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_CLOUD_API_URL,
    PREFECT_RUNNER_POLL_FREQUENCY,
    temporary_settings,
)

from flowforge.settings import Settings
from orchestrator.deployment import (
    POLL_SECONDS,
    WARM_MODULES,
    fallback_seconds,
    poll_seconds,
)
from orchestrator.flow import FLOW_NAME
from orchestrator.wakeup import IDLE_POLL_SECONDS

LOCAL_SERVER = "http://127.0.0.1:4200/api"


@pytest.fixture(autouse=True)
def _no_poll_frequency_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_RUNNER_POLL_FREQUENCY", raising=False)


def test_a_self_hosted_server_is_polled_rarely_while_its_event_stream_wakes_the_runner() -> None:
    with temporary_settings(updates={PREFECT_API_URL: LOCAL_SERVER}):
        assert poll_seconds() == IDLE_POLL_SECONDS
        assert fallback_seconds() == POLL_SECONDS < 1  # the stream down: nothing wakes it


def test_prefect_cloud_keeps_prefects_poll_frequency() -> None:
    """Every request to Prefect Cloud counts toward the account's rate limit."""
    cloud = f"{PREFECT_CLOUD_API_URL.value()}/accounts/a/workspaces/w"
    with temporary_settings(updates={PREFECT_API_URL: cloud}):
        assert poll_seconds() == fallback_seconds() == PREFECT_RUNNER_POLL_FREQUENCY.value() >= 10


def test_an_explicit_poll_frequency_wins() -> None:
    with temporary_settings(
        updates={PREFECT_API_URL: LOCAL_SERVER, PREFECT_RUNNER_POLL_FREQUENCY: 3}
    ):
        assert poll_seconds() == fallback_seconds() == 3


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


@pytest.fixture
def idle_deployment(
    settings: Settings, prefect_api: str, tmp_path: Path
) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """`flowforge serve deployment` under a name of its own, polling at its idle pace,
    its stdout and stderr in a file, as `flowforge up` keeps them."""
    from tests.orchestrator.test_cli import env_of

    name = f"idle-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "deployment.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWFORGE_", "PREFECT_"))}
    env |= {k: v for k, v in env_of(settings).items() if k != "FLOWFORGE_LOG_FORMAT"}
    env |= {"PREFECT_API_URL": prefect_api, "PREFECT_HOME": str(tmp_path / "prefect")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "deployment", "--name", name],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield f"{FLOW_NAME}/{name}", log, process
    finally:
        process.terminate()
        process.wait(30)


def test_an_idle_served_deployment_logs_no_polls(
    idle_deployment: tuple[str, Path, subprocess.Popen[bytes]],
) -> None:
    """Every poll (each 0.25 s then) was logged, twice (Prefect's text line, then FlowForge's
    JSON): 1.45 MB in 19 minutes. Idle for several polls (Prefect's record of the deployment's
    last poll moves on), the log holds no poll and no line twice."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    name, log, process = idle_deployment
    polls: set[object] = set()
    deadline = time.monotonic() + 90
    with get_client(sync_client=True) as client:
        while len(polls) < 4:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"polled {len(polls)} times:\n{log.read_text()}"
            with contextlib.suppress(ObjectNotFound):
                polled = client.read_deployment_by_name(name).last_polled
                if polled is not None:
                    polls.add(polled)
            time.sleep(0.2)
    lines = log.read_text().splitlines()
    assert not [line for line in lines if "get_scheduled_flow_runs" in line or "HTTP" in line]
    assert_each_once(lines)


def assert_each_once(lines: list[str]) -> None:
    """No message is written twice, as a JSON object and as a text line."""
    messages = [str(json.loads(line)["msg"]) for line in lines if line.startswith("{")]
    texts = [line for line in lines if not line.startswith("{")]
    assert not [m for m in messages if any(m in text for text in texts)], "logged twice"
