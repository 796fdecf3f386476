"""Model SQL is untrusted: hostile queries are refused, and nothing else is read or written.

Each query goes through the real service and must come back INVALID_ARGUMENT naming the
model. Then the second line of defence is tested on its own: with the SQL guard bypassed,
every query runs in the locked-down DuckDB session, which refuses to touch files, URLs or
other prefixes; what does run there shows nothing from outside the job.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import polars as pl
import pytest

from flowforge.errors import InvalidArgument
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from services.gold.engine import GoldSession, Inputs, Source
from tests.gold.conftest import build, commit_dimension, commit_silver, commit_table, serving

CANARY = "canary-7f3a"

HOSTILE = {
    "copy_to_local_file": "COPY (SELECT * FROM silver) TO '{out}'",
    "copy_to_other_prefix": "COPY silver TO 's3://{bucket}/gold/{other}/job/run=x/stolen.parquet'",
    "attach": "ATTACH '{db}' AS stolen",
    "install": "INSTALL httpfs",
    "load": "LOAD '{canary}'",
    "set": "SET enable_external_access = true",
    "pragma": "PRAGMA threads = 64",
    "create_table": "CREATE TABLE copied AS SELECT * FROM silver",
    "export": "EXPORT DATABASE '{folder}'",
    "explain_analyze": "EXPLAIN ANALYZE SELECT * FROM silver",
    "call": "CALL pragma_database_list()",
    "second_statement": "SELECT * FROM silver; DROP VIEW silver",
    "comment_smuggling": "SELECT 1 AS one -- harmless\n; COPY silver TO '{out}'",
    "read_csv_local": "SELECT * FROM read_csv('{canary}')",
    "replacement_scan_local": "SELECT * FROM '{canary}'",
    "read_parquet_other_workflow": "SELECT * FROM read_parquet('s3://{bucket}/{other_key}')",
    "http_url": "SELECT * FROM '{http}/{bucket}/{other_key}'",
    "table_function_in_subquery": (
        "SELECT * FROM silver WHERE name IN (SELECT content FROM read_text('{canary}'))"
    ),
    "table_function_in_cte": "WITH f AS (SELECT * FROM glob('/etc/*')) SELECT * FROM f",
    "lateral_table_function": "SELECT * FROM silver, LATERAL read_blob(silver.name)",
    "dynamic_sql": "SELECT * FROM query('SELECT * FROM read_csv(''{canary}'')')",
    "secrets": "SELECT * FROM duckdb_secrets()",
    "settings": "SELECT current_setting('allowed_paths') AS paths",
    # Functions that reach settings, the catalogue or SQL text without naming a setting
    # function or a table function: the allowlist refuses them (issue 16).
    "plan_of_sql_text": (
        "SELECT json_serialize_plan('SELECT current_setting(''temp_directory'')', "
        "optimize := true) AS plan"
    ),
    "sql_text_to_tree": "SELECT json_serialize_sql('SELECT * FROM duckdb_secrets()') AS t",
    "macro_reading_views": "SELECT pg_get_viewdef(view_oid) AS sql FROM (SELECT 1 AS view_oid)",
    "macro_reading_database_size": "SELECT get_block_size('memory') AS block_size",
    "macro_reading_types": "SELECT format_type(25, 0) AS type_name",
    "running_statement": "SELECT current_query() AS statement",
    "variable": "SELECT getvariable('anything') AS v",
    "setting_as_method": "SELECT 'temp_directory'.current_setting() AS v",
    "catalog_qualified_function": "SELECT system.main.current_setting('temp_directory') AS v",
    "setting_in_window": "SELECT current_setting('temp_directory') OVER () AS v FROM silver",
    "catalog": "SELECT * FROM information_schema.tables",
    "qualified_silver": "SELECT * FROM memory.main.silver",
    "show": "SHOW TABLES",
    "unlisted_dimension": "SELECT * FROM dim_{hidden}",
    "cte_out_of_scope": (
        "WITH a AS (SELECT * FROM duckdb_settings), duckdb_settings AS (SELECT 1 AS x) "
        "SELECT * FROM a"
    ),
    # A CTE does not see itself in its own body: there its name is the catalog's table.
    "self_named_cte_settings": (
        "WITH pg_settings AS (FROM pg_settings) SELECT name, setting FROM pg_settings"
    ),
    "self_named_cte_views": (
        "WITH duckdb_views AS (FROM duckdb_views) SELECT view_name, sql FROM duckdb_views"
    ),
    "self_named_cte_sqlite_master": (
        "WITH sqlite_master AS (SELECT * FROM sqlite_master) SELECT sql FROM sqlite_master"
    ),
    "self_named_cte_in_subquery": (
        "SELECT * FROM (WITH pg_settings AS (FROM pg_settings) SELECT name, setting "
        "FROM pg_settings)"
    ),
    "self_named_cte_in_cte": (
        "WITH a AS (WITH duckdb_views AS (FROM duckdb_views) SELECT sql FROM duckdb_views) "
        "SELECT * FROM a"
    ),
    "self_named_recursive_cte": (
        "WITH RECURSIVE pg_settings AS (FROM pg_settings) SELECT name, setting FROM pg_settings"
    ),
    "recursive_cte_anchor": (
        "WITH RECURSIVE duckdb_views AS (FROM duckdb_views UNION ALL "
        "FROM duckdb_views WHERE false) SELECT sql FROM duckdb_views"
    ),
    "recursive_cte_anchor_subquery": (
        "WITH RECURSIVE pg_settings(name, setting) AS (SELECT name, setting FROM "
        "(FROM pg_settings) UNION ALL SELECT name, setting FROM pg_settings WHERE false) "
        "SELECT * FROM pg_settings"
    ),
    "recursive_cte_inner_with": (
        "WITH RECURSIVE sqlite_master(sql) AS (WITH a AS (FROM sqlite_master) SELECT sql "
        "FROM a UNION ALL SELECT sql FROM sqlite_master WHERE false) SELECT * FROM sqlite_master"
    ),
    "recursive_cte_union_by_name": (
        "WITH RECURSIVE pg_settings AS (FROM pg_settings UNION ALL BY NAME "
        "FROM pg_settings WHERE false) SELECT name, setting FROM pg_settings"
    ),
    # DuckDB's delta_scan reads any table's log and files, whatever allowed_paths says: a
    # build never has the delta extension, and the guard refuses it by name (issue 19).
    "delta_scan_own_silver": "SELECT * FROM delta_scan('s3://{bucket}/silver/{workflow_id}/job')",
    "delta_scan_other_silver": "SELECT * FROM delta_scan('s3://{bucket}/silver/{other}/job')",
    "delta_scan_gold_table": "SELECT * FROM delta_scan('s3://{bucket}/{other_gold}')",
    "delta_scan_dimension": "SELECT * FROM delta_scan('s3://{bucket}/dimensions/{hidden}')",
    "delta_list_files": "SELECT * FROM delta_list_files('s3://{bucket}/silver/{other}/job')",
    "own_delta_log": (
        "SELECT * FROM read_json('s3://{bucket}/silver/{workflow_id}/job/_delta_log/"
        "00000000000000000000.json')"
    ),
    "own_silver_folder": "SELECT * FROM 's3://{bucket}/silver/{workflow_id}/job/*.parquet'",
    "own_older_version": "SELECT * FROM read_parquet('s3://{bucket}/{older_key}')",
    "own_older_version_replacement_scan": "SELECT * FROM 's3://{bucket}/{older_key}'",
}


@pytest.fixture(scope="module")
def scene(
    settings: Settings, store: ObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A job with silver, a canary file, another workflow's silver and a hidden dimension."""
    job = JobKey(f"wf-{uuid.uuid4().hex[:10]}", "job")
    other = JobKey(f"wf-{uuid.uuid4().hex[:10]}", "job")
    # An older version of the job's own silver: its file is no longer the table's.
    older = commit_silver(settings, job, pl.DataFrame({"name": [CANARY], "n": [0]}))
    own = commit_silver(settings, job, pl.DataFrame({"name": ["a", "b"], "n": [1, 2]}))
    stolen = commit_silver(settings, other, pl.DataFrame({"name": [CANARY]}))
    other_gold = TableRef.gold_model(other, "leaked")
    commit_table(settings, other_gold, pl.DataFrame({"name": [CANARY]}), run_id="g", inputs={})
    hidden = f"hidden_{uuid.uuid4().hex[:8]}"
    commit_dimension(settings, hidden, pl.DataFrame({"secret": [CANARY]}))
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "canary.csv").write_text(f"secret\n{CANARY}\n")
    endpoint = urlsplit(settings.s3_endpoint_url or "")
    yield {
        "workflow_id": job.workflow_id,
        "bucket": settings.s3_bucket,
        "other": other.workflow_id,
        "other_key": stolen.keys[0],
        "other_gold": other_gold.path,
        "older_key": older.keys[0],
        "own_keys": ",".join(own.keys),
        "canary": str(folder / "canary.csv"),
        "out": str(folder / "out.csv"),
        "db": str(folder / "stolen.duckdb"),
        "folder": str(folder / "export"),
        "http": f"{endpoint.scheme}://{endpoint.netloc}",
        "hidden": hidden,
    }


def everything(store: ObjectStore) -> set[tuple[str, str]]:
    return {(o.key, o.etag) for o in store.list("")}


def test_hostile_queries_are_refused_and_touch_nothing(
    gold, channel, store: ObjectStore, scene: dict[str, str]
) -> None:
    job = JobKey(scene["workflow_id"], "job")
    before = everything(store)
    for label, template in HOSTILE.items():
        sql = template.format(**scene)
        with pytest.raises(grpc.RpcError) as caught:
            build(gold, job, {"hostile": sql}, dimensions=["listed_only"], skip_profile=True)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (label, caught.value)
        assert caught.value.details().startswith("model 'hostile'"), label
        assert CANARY not in caught.value.details(), label
    assert everything(store) == before
    for written in ("out", "db", "folder"):
        assert not Path(scene[written]).exists()
    assert serving(channel)


def test_refusals_explain_themselves(gold, scene: dict[str, str]) -> None:
    job = JobKey(scene["workflow_id"], "job")
    expected = {
        "copy_to_local_file": "must be a SELECT (WITH ... SELECT is fine), not COPY",
        "second_statement": "must be one SELECT statement; it holds 2 (SELECT, DROP)",
        "read_csv_local": "(line 1, column 15): calls the table function read_csv()",
        "unlisted_dimension": f"the spec's dimensions do not list '{scene['hidden']}'",
        "qualified_silver": "reads 'memory.main.silver'",
        "settings": "calls current_setting(), which models may not use",
        "plan_of_sql_text": "calls json_serialize_plan(), which models may not use: it parses "
        "or plans SQL text",
        "macro_reading_views": "calls pg_get_viewdef(), which models may not use: it reads "
        "the catalogue",
        "delta_scan_other_silver": "(line 1, column 15): calls the table function delta_scan()",
        "own_older_version_replacement_scan": f"reads 's3://{scene['bucket']}/",
    }
    for label, message in expected.items():
        sql = HOSTILE[label].format(**scene)
        with pytest.raises(grpc.RpcError) as caught:
            build(gold, job, {"hostile": sql}, skip_profile=True)
        assert message in caught.value.details(), label


# What the locked session itself must refuse (the rest it refuses for other reasons, or
# runs over nothing but this job's views and its own configuration).
LOCKED_OUT = {
    "copy_to_local_file",
    "copy_to_other_prefix",
    "attach",
    "install",
    "load",
    "set",
    "pragma",
    "export",
    "comment_smuggling",
    "read_csv_local",
    "replacement_scan_local",
    "read_parquet_other_workflow",
    "http_url",
    "table_function_in_subquery",
    "table_function_in_cte",
    "dynamic_sql",
    "unlisted_dimension",
    "cte_out_of_scope",
    "delta_scan_own_silver",
    "delta_scan_other_silver",
    "delta_scan_gold_table",
    "delta_scan_dimension",
    "delta_list_files",
    "own_delta_log",
    "own_silver_folder",
    "own_older_version",
    "own_older_version_replacement_scan",
}


def outside_the_job(settings: Settings, scene: dict[str, str]) -> list[str]:
    """Text that shows up only if something beyond the job's own inputs was read."""
    texts = [CANARY, scene["other"], scene["hidden"]]
    if settings.s3_secret_access_key:
        texts.append(settings.s3_secret_access_key.get_secret_value())
    return texts


@pytest.mark.parametrize("label", list(HOSTILE))
def test_the_locked_session_reads_nothing_else_even_without_the_guard(
    settings: Settings, store: ObjectStore, scene: dict[str, str], label: str, tmp_path: Path
) -> None:
    job = JobKey(scene["workflow_id"], "job")
    silver = Source(scene["own_keys"].split(","))
    table = TableRef.gold_model(job, f"locked-{label.replace('_', '-')}")
    outputs = [f"{table.prefix}part-{uuid.uuid4()}.parquet" for _ in range(2)]
    sql = HOSTILE[label].format(**scene)
    before = everything(store)
    with GoldSession(settings, Inputs({"silver": silver}, outputs), tmp_path) as session:
        # The lock leaves the session its own silver and its own output files ...
        allowed = session.run_model("allowed", "SELECT * FROM silver ORDER BY n", outputs[0], 5)
        assert (allowed.rows, allowed.key) == (2, outputs[0])
        # ... and whatever the model does, nothing else.
        try:
            run = session.run_model("hostile", sql, outputs[1], 5)
        except InvalidArgument as exc:
            assert CANARY not in exc.message, label
            if label in LOCKED_OUT:
                assert any(
                    phrase in exc.message
                    for phrase in (
                        "disabled by configuration",
                        "disabled through configuration",
                        "configuration has been locked",
                        "not exist",
                        "not in the catalog",
                    )
                ), exc.message
        else:
            assert label not in LOCKED_OUT, label
            assert run.key == outputs[1]
            written = pl.read_parquet(io.BytesIO(store.get_bytes(run.key)))
            shown = f"{written.to_dicts()} {run.preview_rows}"
            for text in outside_the_job(settings, scene):
                assert text not in shown, (label, text)
    written_elsewhere = {o for o in everything(store) - before if o[0] not in outputs}
    assert written_elsewhere == set(), label
    assert before - everything(store) == set(), label  # nor anything deleted
    store.delete_keys(outputs)
    for path in ("out", "db", "folder"):
        assert not Path(scene[path]).exists()
