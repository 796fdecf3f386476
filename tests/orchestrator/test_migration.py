"""`flowforge migrate` on what today's layers committed (tests/orchestrator/cases/legacy,
written by capture.py with the manifest-committing layers): each dataset becomes version 0
of its Delta tables, the Parquet values read back by delta-rs, polars and DuckDB equal to
the old files' (read here straight from the folder), bronze and silver data not copied,
the manifest renamed; a second run, and a run after a crash half-way, change nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import duckdb_extension_delta
import polars as pl
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cli.main import app
from flowforge import tables
from flowforge.duckdb_s3 import connect
from flowforge.layout import JobKey
from flowforge.settings import Settings, get_settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from orchestrator.migration import migrate
from tests.delta import table
from tests.orchestrator.test_cli import env_of

LEGACY = Path(__file__).resolve().parent / "cases" / "legacy"
WORKFLOW, DIMENSION = "legacy", "countries"  # as captured
MODELS = ("customers_by_country", "signups_per_month", "data_quality", "profile")


@dataclass(frozen=True)
class Landed:
    """The captured datasets, uploaded under names no other test uses."""

    workflow: str
    dimension: str

    @property
    def job(self) -> JobKey:
        return JobKey(self.workflow, "customers")

    def key(self, captured: str) -> str:
        """A captured key (or every key in a manifest's text) under the landed names."""
        return captured.replace(f"/{WORKFLOW}/", f"/{self.workflow}/").replace(
            f"dimensions/{DIMENSION}/", f"dimensions/{self.dimension}/"
        )


@pytest.fixture
def landed(store: ObjectStore) -> Landed:
    landed = Landed(f"mg-{uuid.uuid4().hex[:8]}", f"dim{uuid.uuid4().hex[:8]}")
    for path in LEGACY.rglob("*"):
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts:
            data = path.read_bytes()
            if path.name == "_manifest.json":  # and the keys it lists (landing keys too)
                data = landed.key(data.decode()).encode()
            store.put_bytes(landed.key(str(path.relative_to(LEGACY))), data)
    return landed


def manifest(name: str) -> dict[str, Any]:
    return json.loads((LEGACY / name / "_manifest.json").read_text())  # type: ignore[no-any-return]


def old_rows(objects: list[dict[str, Any]]) -> pl.DataFrame:
    """The oracle: the listed files read from the captured folder, `_row_hash` as the
    same 64 bits signed (the README's definition, in plain Python)."""
    frames = [pl.read_parquet(LEGACY / o["key"]) for o in objects]
    frame = pl.concat(frames, how="diagonal_relaxed")
    if "_row_hash" in frame.columns:
        signed = [h - 2**64 if h >= 2**63 else h for h in frame["_row_hash"].to_list()]
        frame = frame.with_columns(pl.Series("_row_hash", signed, dtype=pl.Int64))
    return frame


def delta_rows(settings: Settings, ref: TableRef) -> pl.DataFrame:
    """The table's current rows as delta-rs reads them."""
    return pl.DataFrame(pa.table(table(settings, ref).to_pyarrow_dataset().to_table()))


def same_rows(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert sorted(got.columns) == sorted(want.columns)
    got, want = got.select(sorted(want.columns)), want.select(sorted(want.columns))
    keys = [c for c in want.columns if want.schema[c] not in (pl.List, pl.Struct)]
    assert got.sort(keys, nulls_last=True).to_dicts() == want.sort(keys, nulls_last=True).to_dicts()


def test_each_dataset_becomes_version_0_of_its_tables(
    settings: Settings, store: ObjectStore, landed: Landed
) -> None:
    done = migrate(settings, store, [landed.workflow], [landed.dimension])
    assert [(d.status, d.error) for d in done] == [("migrated", "")] * 4
    job = landed.job
    bronze, silver, gold = (
        manifest(f"{layer}/{WORKFLOW}/customers") for layer in ("bronze", "silver", "gold")
    )
    dimension = manifest(f"dimensions/{DIMENSION}")
    expected = {
        TableRef.bronze(job): (bronze, bronze["data_objects"]),
        TableRef.bronze_rejects(job): (bronze, bronze["reject_objects"]),
        TableRef.silver(job): (silver, silver["data_objects"]),
        TableRef.silver_quarantine(job): (silver, silver["reject_objects"]),
        TableRef.dimension(landed.dimension): (dimension, dimension["data_objects"]),
        **{
            TableRef.gold_model(job, name): (
                gold,
                [o for o in gold["data_objects"] if o["key"].endswith(f"/{name}.parquet")],
            )
            for name in MODELS
        },
    }
    made = {t.table: (t.files, t.rewritten, t.copied) for d in done for t in d.tables}
    for ref, (legacy, objects) in expected.items():
        # Rewritten: the files with an unsigned column; copied: the others from elsewhere.
        unsigned = [
            any(t.is_unsigned_integer() for t in pl.read_parquet_schema(LEGACY / o["key"]).values())
            for o in objects
        ]
        outside = [not landed.key(o["key"]).startswith(ref.prefix) for o in objects]
        copied = sum(out and not u for out, u in zip(outside, unsigned, strict=True))
        assert made[ref.path] == (len(objects), sum(unsigned), copied), ref
        loaded = table(settings, ref)
        assert loaded.version() == 0, ref
        same_rows(delta_rows(settings, ref), old_rows(objects))
        (first,) = tables.history(loaded)
        assert first.run_id == legacy["run_id"], ref
        assert first.inputs["migrated_from"].endswith("_manifest.json"), ref
    # The rows are where they were: bronze and silver add the listed objects, rewritten in
    # place for their UInt64 _row_hash; side tables and models got copies in their folders.
    for ref, legacy in ((TableRef.bronze(job), bronze), (TableRef.silver(job), silver)):
        bucket = f"s3://{settings.s3_bucket}/"
        added = sorted(u.removeprefix(bucket) for u in table(settings, ref).file_uris())
        assert added == sorted(landed.key(o["key"]) for o in legacy["data_objects"])
        schema = pa.schema(table(settings, ref).schema().to_arrow())
        assert schema.field("_row_hash").type == pa.int64()
    bronze_table = table(settings, TableRef.bronze(job))
    assert bronze_table.metadata().configuration == tables.CHANGE_DATA_FEED
    stats = pa.table(bronze_table.get_add_actions(flatten=True)).to_pylist()
    assert {(s["min._source_key"], s["num_records"]) for s in stats} == {
        (landed.key(o["source_key"]), o["rows"]) for o in bronze["data_objects"]
    }
    # A repeated call of the manifest's run finds its commit and replays the report.
    found = tables.find_commit(table(settings, TableRef.silver(job)), silver["run_id"])
    assert found is not None and found.report is not None
    assert found.report.rows_out == silver["result"]["rows_out"]
    assert (found.report.table, found.report.table_version) == (TableRef.silver(job).path, 0)
    assert found.report.side_table == TableRef.silver_quarantine(job).path
    # The manifests are renamed, their content kept.
    for layer in ("bronze", "silver", "gold"):
        prefix = f"{layer}/{landed.workflow}/customers/"
        assert store.head(prefix + "_manifest.json") is None
        assert json.loads(store.get_bytes(prefix + "_manifest.json.migrated"))["run_id"]


def test_readers_read_the_migrated_tables(
    settings: Settings, store: ObjectStore, landed: Landed
) -> None:
    """What the README shows: polars scan_delta and DuckDB delta_scan over silver."""
    migrate(settings, store, [landed.workflow], [])
    ref = TableRef.silver(landed.job)
    want = old_rows(manifest(f"silver/{WORKFLOW}/customers")["data_objects"])
    scanned = pl.scan_delta(
        ref.uri(settings), storage_options=tables.storage_options(settings)
    ).collect()
    same_rows(scanned, want)
    # Loaded by path from its package, as httpfs is (README: `INSTALL delta` downloads it).
    extension = (
        Path(duckdb_extension_delta.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "delta.duckdb_extension"
    )
    with connect(settings) as con:
        con.execute(f"LOAD '{extension}'")
        (count, hashes) = con.execute(
            f"SELECT count(*), sum(_row_hash::HUGEINT) FROM delta_scan('{ref.uri(settings)}')"
        ).fetchone()  # type: ignore[misc]
    assert (count, hashes) == (want.height, sum(want["_row_hash"].to_list()))


def objects_now(store: ObjectStore, landed: Landed) -> dict[str, str]:
    prefixes = [f"{layer}/{landed.workflow}/" for layer in ("bronze", "silver", "gold")]
    return {
        o.key: o.etag for p in [*prefixes, f"dimensions/{landed.dimension}/"] for o in store.list(p)
    }


@pytest.fixture
def cli(settings: Settings, tmp_path: Path) -> Iterator[tuple[CliRunner, dict[str, str]]]:
    get_settings.cache_clear()
    yield CliRunner(), env_of(settings.model_copy(update={"state_dir": tmp_path}))
    get_settings.cache_clear()


def test_a_second_run_changes_nothing(
    cli: tuple[CliRunner, dict[str, str]], store: ObjectStore, landed: Landed
) -> None:
    runner, env = cli
    scope = ["--workflow", landed.workflow, "--dimension", landed.dimension]
    first = runner.invoke(app, ["migrate", *scope, "--json"], env=env)
    assert first.exit_code == 0, first.output
    assert [d["status"] for d in json.loads(first.stdout)] == ["migrated"] * 4
    after = objects_now(store, landed)
    again = runner.invoke(app, ["migrate", *scope], env=env)
    assert again.exit_code == 0, again.output
    assert again.stdout.count("already migrated") == 4
    assert objects_now(store, landed) == after


def test_a_run_that_crashed_before_renaming_is_finished(
    settings: Settings, store: ObjectStore, landed: Landed
) -> None:
    """The tables were made, the manifests not yet renamed: the next run keeps the tables
    (version 0, made from the same manifest) and renames."""
    migrate(settings, store, [landed.workflow], [])
    made = objects_now(store, landed)
    for layer in ("bronze", "silver", "gold"):
        prefix = f"{layer}/{landed.workflow}/customers/"
        store.copy(prefix + "_manifest.json.migrated", prefix + "_manifest.json")
        store.delete_keys([prefix + "_manifest.json.migrated"])
    done = migrate(settings, store, [landed.workflow], [])
    assert [d.status for d in done] == ["migrated"] * 3
    assert all(t.existed for d in done for t in d.tables)
    assert objects_now(store, landed).keys() == made.keys()
    assert table(settings, TableRef.silver(landed.job)).version() == 0


def test_a_table_that_is_not_the_manifests_is_left_alone(
    settings: Settings, store: ObjectStore, landed: Landed
) -> None:
    from tests.delta import commit

    commit(settings, TableRef.silver(landed.job), {"other": ["data"]}, "someone-else")
    done = {d.manifest.split("/")[0]: d for d in migrate(settings, store, [landed.workflow], [])}
    assert done["silver"].status == "failed"
    assert "already exists and was not made from" in done["silver"].error
    assert store.head(f"silver/{landed.workflow}/customers/_manifest.json") is not None
    assert done["bronze"].status == done["gold"].status == "migrated"
