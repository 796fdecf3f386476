"""The real stack for the browser test: services, Prefect, the served deployment, the API."""

from __future__ import annotations

import contextlib
import contextvars
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, sync_playwright

from flowforge.settings import Settings
from tests.orchestrator.conftest import (  # noqa: F401 (the orchestrator's fixtures, by name)
    Stack,
    postgres_schema_url,
    sample_workflow,
    stack,
)
from tests.orchestrator.test_cli import _wait_for_deployment, env_of

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parents[1] / "output"


@pytest.fixture(scope="module")
def served_deployment(
    stack: Stack,  # noqa: F811
    prefect_api: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[subprocess.Popen[bytes]]:
    """`flowforge serve deployment`, polling Prefect every second (not 10) for new runs."""
    home = tmp_path_factory.mktemp("runner")
    with (home / "runner.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "flowforge.cli", "serve", "deployment"],
            env={
                **os.environ,
                **env_of(stack.settings),
                "PREFECT_API_URL": prefect_api,
                "PREFECT_HOME": str(home),
                "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            },  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_deployment(process, home / "runner.log")
            yield process
        finally:
            process.terminate()
            process.wait(30)


@contextlib.contextmanager
def serve_api(settings: Settings) -> Iterator[str]:
    """The HTTP API on a free loopback port, in a thread of this process; yields its URL."""
    from orchestrator.api.app import create_app

    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    # The thread runs in this context: it carries the Prefect settings (the API URL).
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(server.run,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def api_url(stack: Stack) -> Iterator[str]:  # noqa: F811
    with serve_api(stack.settings) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless chromium through Playwright (Playwright never downloads one)."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: install Debian's chromium (`apt-get install chromium`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()
