"""`flowforge up` as the README describes it: the whole product (web UI and API, the stack,
a Prefect server and its UI, the served deployment) stays up, the web UI's address comes
first, `stack.env` tells another shell where the rest is, Ctrl-C or SIGTERM stops
everything. (A job run through a served deployment with `flowforge run` is in test_cli.py;
the web UIs it prints, in a browser, in tests/ui/test_up_ui.py.)"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from tests.orchestrator.upstack import UpProcess
from tests.sample_oracle import jobs

API_PORT = 8000


def test_up_serves_everything_until_ctrl_c(tmp_path: Path) -> None:
    up = UpProcess(tmp_path)
    try:
        printed = up.wait_ready()
        addresses = printed.split("FlowForge UI", 1)
        assert len(addresses) == 2 and "Prefect UI" not in addresses[0], printed  # UI first
        for label in (
            "Prefect UI",
            "bronze service",
            "flowforge-medallion/customer-data",
            "flowforge-workflow/customer-data",
            "flowforge-maintenance/tables (cron: 0 3 * * *, UTC)",
        ):
            assert label in printed
        env_file = up.state / "stack.env"
        assert env_file.stat().st_mode & 0o077 == 0  # it holds the S3 secret
        stack_env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert stack_env["PREFECT_API_URL"] in printed
        assert stack_env["FLOWFORGE_S3_SECRET_ACCESS_KEY"] not in printed

        ui = up.address("FlowForge UI")
        page = httpx.get(f"{ui}/", timeout=30)
        assert page.status_code == 200 and "<title>FlowForge</title>" in page.text
        listed = httpx.get(f"{ui}/api/jobs", timeout=30).json()
        assert {(j["workflow_id"], j["job_id"]) for j in listed} == {
            ("customer-data", job) for job in jobs()
        }
        # The Prefect UI asks this for its API's address: the server's, not port 4200.
        prefect_ui = up.address("Prefect UI")
        settings = httpx.get(f"{prefect_ui}/ui-settings", timeout=30).json()
        assert settings["api_url"] == up.address("Prefect API") == stack_env["PREFECT_API_URL"]
    finally:
        code = up.stop(signal.SIGINT)
    assert code == 0, up.printed
    assert up.leftovers() == []


@contextmanager
def holding(port: int) -> Iterator[bool]:
    """Port `port` on loopback taken by a listener here (True), or by someone else (False)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            yield False
            return
        sock.listen()
        yield True


def test_up_without_the_sample_on_another_port_stops_on_sigterm(tmp_path: Path) -> None:
    with holding(API_PORT):  # 8000 taken: the UI goes to a free port and says which
        up = UpProcess(tmp_path, "--no-sample")
        try:
            printed = up.wait_ready()
            assert "sample workflow     none (--no-sample)" in printed
            ui = up.address("FlowForge UI")
            assert not ui.endswith(f":{API_PORT}"), printed
            assert httpx.get(f"{ui}/api/workflows", timeout=30).json() == []
            assert httpx.get(f"{ui}/api/jobs", timeout=30).json() == []
        finally:
            code = up.stop(signal.SIGTERM)
    assert code == 0, up.printed
    assert up.leftovers() == []


def test_an_api_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        up = UpProcess(tmp_path, "--api-port", str(taken))
        assert up.process.wait(60) == 1
    assert f"port {taken} is in use: choose another with --api-port" in up.printed
    assert not (up.state / "s3").exists()  # nothing was started
    assert up.leftovers() == []


def test_a_server_up_started_that_dies_stops_everything(tmp_path: Path) -> None:
    """The API process SIGKILLed (an OOM kill): up says so, stops the rest, exits 1."""
    up = UpProcess(tmp_path, "--no-sample")
    try:
        up.wait_ready()
        api = next(
            p
            for p in psutil.Process(up.process.pid).children()
            if "serve api" in " ".join(p.cmdline())
        )
        api.kill()
        assert up.process.wait(90) == 1, up.printed
    finally:
        up.stop(signal.SIGTERM)
    assert "the API exited; see its log in" in up.printed
    assert up.leftovers() == []
