"""A workflow model reads its workflow's committed silver, its listed dimensions and the
models of the same build, nothing else: refused at the spec or by the guard, and, with
both bypassed, the locked session reads nothing else either."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import polars as pl
import pytest

from flowforge.errors import InvalidArgument
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from services.gold.engine import GoldSession, Inputs, Source
from tests.gold.conftest import build_workflow, commit_dimension, commit_silver, serving

CANARY = "canary-wf-41c9"
JOBS = ["orders"]

HOSTILE = {
    "other_workflows_silver": 'SELECT * FROM "{other}".silver.orders',
    "a_job_not_in_the_workflow": "SELECT * FROM silver.secrets",
    "catalog_qualified_silver": "SELECT * FROM memory.silver.orders",
    "own_file_by_url": "SELECT * FROM 's3://{bucket}/{own_key}'",
    "own_file_by_read_parquet": "SELECT * FROM read_parquet('s3://{bucket}/{own_key}')",
    "own_older_version": "SELECT * FROM read_parquet('s3://{bucket}/{older_key}')",
    "own_delta_log": (
        "SELECT * FROM read_json('s3://{bucket}/silver/{workflow_id}/orders/_delta_log/"
        "00000000000000000000.json')"
    ),
    "own_table_by_delta_scan": "SELECT * FROM delta_scan('s3://{bucket}/silver/{workflow_id}/orders')",
    "other_silver_by_delta_scan": (
        "SELECT * FROM delta_scan('s3://{bucket}/silver/{other}/secrets')"
    ),
    "own_gold_by_url": "SELECT * FROM 's3://{bucket}/gold/{workflow_id}/_workflow/first/*.parquet'",
    "itself": "SELECT * FROM gold.hostile",
    "unlisted_dimension": "SELECT * FROM dim_{hidden}",
}


@pytest.fixture(scope="module")
def scene(settings: Settings) -> Iterator[dict[str, str]]:
    workflow_id = f"wf-{uuid.uuid4().hex[:10]}"
    other = f"wf-{uuid.uuid4().hex[:10]}"
    older = commit_silver(
        settings, JobKey(workflow_id, "orders"), pl.DataFrame({"n": [-1], "s": [CANARY]})
    )
    own = commit_silver(
        settings, JobKey(workflow_id, "orders"), pl.DataFrame({"n": [1, 2], "s": ["a", "b"]})
    )
    stolen = commit_silver(settings, JobKey(other, "secrets"), pl.DataFrame({"s": [CANARY]}))
    commit_silver(settings, JobKey(other, "orders"), pl.DataFrame({"s": [CANARY]}))
    hidden = f"hidden_{uuid.uuid4().hex[:8]}"
    commit_dimension(settings, hidden, pl.DataFrame({"s": [CANARY]}))
    yield {
        "workflow_id": workflow_id,
        "other": other,
        "bucket": settings.s3_bucket,
        "own_key": own.keys[0],
        "own_keys": ",".join(own.keys),
        "older_key": older.keys[0],
        "stolen_key": stolen.keys[0],
        "hidden": hidden,
    }  # fmt: skip


def everything(store: ObjectStore) -> set[tuple[str, str]]:
    return {(o.key, o.etag) for o in store.list("")}


def test_hostile_workflow_models_are_refused_and_touch_nothing(
    gold, channel, store: ObjectStore, scene: dict[str, str]
) -> None:
    before = everything(store)
    for label, template in HOSTILE.items():
        models = {"first": "SELECT n FROM silver.orders", "hostile": template.format(**scene)}
        with pytest.raises(grpc.RpcError) as caught:
            build_workflow(gold, scene["workflow_id"], models, JOBS)
        details = caught.value.details()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (label, details)
        assert details.startswith(("spec.models[1].sql: ", "model 'hostile'")), (label, details)
        assert CANARY not in details, label
    assert everything(store) == before
    assert serving(channel)


# With the spec and the guard bypassed, what the locked session itself refuses.
LOCKED_OUT = set(HOSTILE) - {
    "catalog_qualified_silver",
    "own_file_by_url",
    "own_file_by_read_parquet",
}


@pytest.mark.parametrize("label", list(HOSTILE))
def test_the_locked_workflow_session_reads_nothing_else_without_the_guard(
    settings: Settings, store: ObjectStore, scene: dict[str, str], label: str, tmp_path: Path
) -> None:
    sql = HOSTILE[label].format(**scene)
    table = TableRef.workflow_model(scene["workflow_id"], f"locked-{label.replace('_', '-')}")
    outputs = [f"{table.prefix}part-{uuid.uuid4()}.parquet" for _ in range(2)]
    views = {"silver.orders": Source(scene["own_keys"].split(","))}
    before = everything(store)
    with GoldSession(settings, Inputs(views, outputs), tmp_path) as session:
        first = session.run_model(
            "first", "SELECT n FROM silver.orders ORDER BY n", outputs[0], 5, "gold.first"
        )
        assert first.rows == 2
        # The earlier model is there for the later one to read.
        assert session.con.execute("SELECT sum(n) FROM gold.first").fetchone() == (3,)
        try:
            run = session.run_model("hostile", sql, outputs[1], 5, "gold.hostile")
        except InvalidArgument as exc:
            assert CANARY not in exc.message, label
            if label in LOCKED_OUT:
                assert any(
                    phrase in exc.message
                    for phrase in ("disabled by configuration", "not exist", "not in the catalog")
                ), exc.message
        else:
            assert label not in LOCKED_OUT, label
            written = pl.read_parquet(io.BytesIO(store.get_bytes(run.key)))
            assert CANARY not in f"{written.to_dicts()} {run.preview_rows}", label
    assert {o for o in everything(store) - before if o[0] not in outputs} == set(), label
    assert before - everything(store) == set(), label
    store.delete_keys(outputs)
