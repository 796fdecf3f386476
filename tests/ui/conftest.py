"""The real stack for the browser test: services, Prefect, the served deployment, the API."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.orchestrator.conftest import (  # noqa: F401 (fixtures used by name)
    postgres_schema_url,
    sample_workflow,
    stack,
)
from tests.orchestrator.test_cli import served_deployment  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parents[1] / "output"


@pytest.fixture(scope="module")
def api_url(stack) -> Iterator[str]:  # noqa: F811
    """The HTTP API of issue 6 on a free loopback port, in a thread of this process."""
    import uvicorn

    from orchestrator.api import create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(stack.settings), host="127.0.0.1", port=0, log_level="warning")
    )
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
def browser() -> Iterator[object]:
    """Debian's headless chromium through Playwright (Playwright never downloads one)."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: install Debian's chromium (`apt-get install chromium`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()
