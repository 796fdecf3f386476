"""The sample data in the repository is exactly what examples/generate.py writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "examples/generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_data_is_what_the_generator_writes(tmp_path: Path) -> None:
    generate = _generator()
    for job, rows in generate.SAMPLE_ROWS.items():
        generate.write(job, tmp_path / f"{job}.csv", rows=rows)
        committed = (ROOT / "examples/data" / f"{job}.csv").read_bytes()
        assert (tmp_path / f"{job}.csv").read_bytes() == committed, (
            f"examples/data/{job}.csv is not what `python examples/generate.py` writes"
        )
    dimension = (ROOT / "examples/dimensions/countries.csv").read_text(encoding="utf-8")
    assert generate.countries() == dimension


def test_the_generator_is_deterministic_for_large_files(tmp_path: Path) -> None:
    generate = _generator()
    generate.write("orders", tmp_path / "a.csv", rows=5000, seed=3)
    generate.write("orders", tmp_path / "b.csv", rows=5000, seed=3)
    generate.write("orders", tmp_path / "c.csv", rows=5000, seed=4)
    a = (tmp_path / "a.csv").read_bytes()
    assert a == (tmp_path / "b.csv").read_bytes()
    assert a != (tmp_path / "c.csv").read_bytes()  # the seed matters
    assert a.count(b"\n") >= 5000
