"""Runs the atheris fuzz targets for a bounded time each; a crash or hang fails the test."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from tests.conftest import require

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
CSV_SECONDS = 20
SPEC_SECONDS = 10


def run_fuzzer(target: str, seconds: int, corpus: Path, artifacts: Path, *flags: str) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(HERE / target),
            f"-max_total_time={seconds}",
            "-timeout=20",
            "-rss_limit_mb=3000",
            f"-artifact_prefix={artifacts}/",
            *flags,
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        cwd=ROOT,
    )
    tail = "\n".join(run.stderr.splitlines()[-30:])
    assert run.returncode == 0, f"the fuzzer found a crash:\n{tail}"
    assert "Done" in run.stderr, tail


def test_fuzz_csv_parsing(tmp_path: Path) -> None:
    require(importlib.util.find_spec("atheris") is not None, "atheris (the dev extra)")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for case in (HERE.parent / "bronze" / "cases").glob("*.csv"):
        (corpus / case.name).write_bytes(b"\x00\x00\x00\x00" + case.read_bytes())
    run_fuzzer("fuzz_parsing.py", CSV_SECONDS, corpus, tmp_path)


def test_fuzz_spec_parsing(tmp_path: Path) -> None:
    """Silver specs (YAML), gold model SQL and workflow YAML, seeded with the examples."""
    require(importlib.util.find_spec("atheris") is not None, "atheris (the dev extra)")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for spec in (ROOT / "examples" / "silver").glob("*.yaml"):
        (corpus / spec.name).write_bytes(b"\x00" + spec.read_bytes())  # 0: silver YAML
    for model in (ROOT / "examples" / "models").rglob("*.sql"):
        (corpus / model.name).write_bytes(b"\x01" + model.read_bytes())  # 1: gold SQL
    for workflow in (ROOT / "examples" / "workflows").glob("*.yaml"):
        (corpus / workflow.name).write_bytes(b"\x02" + workflow.read_bytes())  # 2: workflow
    run_fuzzer("fuzz_specs.py", SPEC_SECONDS, corpus, tmp_path, "-max_len=4096")
