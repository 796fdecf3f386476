"""`flowforge demo` (the README's first command) as a user runs it: a fresh process, its own
stack, the sample workflow through the flows (every job, then its own models), exit 0, and
nothing left running afterwards."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psutil

from tests.sample_oracle import EXPECTED, quarantine_reasons, workflow_models


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
    assert "every sample job and workflow model completed" in output
    for job, layers in EXPECTED.items():
        for layer, (rows_in, rows_out, rejected) in layers.items():
            row = re.compile(rf"│ {layer} +│ COMPLETED │ +{rows_in} │ +{rows_out} │ +{rejected} │")
            assert row.search(output), (job, layer)
        for reason, count in quarantine_reasons(job).items():
            assert f"silver quarantined ({reason}): {count}" in output
        rows = EXPECTED[job]["bronze"][1]
        assert (
            f"ok bronze rows = silver + quarantined + duplicates removed: {rows} = {rows}" in output
        )
    for line in ("gold · customers_by_country", "gold · profile"):
        assert line in output, line
    for name, rows in workflow_models().items():  # the workflow's own models, with previews
        assert f"gold · {name} ({len(rows):,} rows" in output, name
        assert re.search(rf"│ model {name} +│ BUILT +│ +{len(rows):,} │", output), name
    assert "Traceback" not in output and "Error logging" not in output
    leftovers = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []
    assert list(tmp_path.glob("flowforge-demo-*")) == []  # its state folder is removed
