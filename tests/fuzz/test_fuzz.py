"""Runs the atheris fuzz target for a bounded time; a crash or hang fails the test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SECONDS = 30


def test_fuzz_csv_parsing(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for case in (HERE.parent / "bronze" / "cases").glob("*.csv"):
        (corpus / case.name).write_bytes(b"\x00\x00\x00\x00" + case.read_bytes())
    run = subprocess.run(
        [
            sys.executable,
            str(HERE / "fuzz_parsing.py"),
            f"-max_total_time={SECONDS}",
            "-timeout=20",
            "-rss_limit_mb=3000",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        cwd=HERE.parent.parent,
    )
    tail = "\n".join(run.stderr.splitlines()[-30:])
    assert run.returncode == 0, f"the fuzzer found a crash:\n{tail}"
    assert "Done" in run.stderr, tail
