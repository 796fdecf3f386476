"""`flowforge up` as the README describes it: the stack and the served deployment stay up,
`stack.env` tells another shell where they are, Ctrl-C stops everything. (A job run through
a served deployment with `flowforge run` is in test_cli.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil


def test_up_serves_the_deployment_until_ctrl_c(tmp_path: Path) -> None:
    state = tmp_path / "state"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWFORGE_", "PREFECT_"))}
    base = clean | {"HOME": str(tmp_path), "COLUMNS": "200"}
    log = tmp_path / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "cli", "up"],
            env=base | {"FLOWFORGE_STATE_DIR": str(state)},
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "In another shell" not in log.read_text():
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        printed = log.read_text()
        # Printed only once the served deployment is registered, so a run can start at once.
        for label in (
            "Prefect UI",
            "bronze service",
            "flowforge-medallion/customer-data",
            "flowforge-maintenance/tables (cron: 0 3 * * *, UTC)",
        ):
            assert label in printed
        env_file = state / "stack.env"
        assert env_file.stat().st_mode & 0o077 == 0  # it holds the S3 secret
        stack_env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert stack_env["PREFECT_API_URL"] in printed
        assert stack_env["FLOWFORGE_S3_SECRET_ACCESS_KEY"] not in printed
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)
    assert up.returncode == 0, log.read_text()
    leftovers = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []
