"""`flowforge demo` (the README's first command) as a user runs it: a fresh process, its own
stack, every sample job through the flow, exit 0, and nothing left running afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil


def test_demo_runs_every_sample_job_and_stops_what_it_started(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWFORGE_", "PREFECT_"))}
    env |= {"TMPDIR": str(tmp_path), "COLUMNS": "200", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "every sample job completed" in output
    for line in (
        "│ bronze │ COMPLETED │     203 │      201 │        2 │",
        "│ silver │ COMPLETED │     398 │      376 │       22 │",
        "│ gold   │ COMPLETED │      36 │       11 │        0 │",
        "silver quarantined (cast_price): 4",
        "ok bronze rows = silver + quarantined + duplicates removed: 201 = 201",
        "gold · customers_by_country",
        "gold · profile",
    ):
        assert line in output, line
    assert "Traceback" not in output and "Error logging" not in output
    leftovers = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []
    assert list(tmp_path.glob("flowforge-demo-*")) == []  # its state folder is removed
