"""A ~100 MB customers job through the real stack, for the progress tests (API, browser).

Its own bronze, silver and gold servers (silver with a small memory limit, so that it
deduplicates in several buckets, one progress report each), the flow in a thread of this
process recording progress every 0.2 s, and the API (uvicorn) over the session's store.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl
from pydantic import SecretStr

from flowforge.layout import JobKey, landing_prefix
from flowforge.settings import Settings
from orchestrator.api.app import create_app
from orchestrator.flow import medallion
from orchestrator.runner import InProcessRunner
from orchestrator.workflows import Workflow
from services.layers import create_server
from tests.api.conftest import TOKEN, ApiServer
from tests.orchestrator.conftest import Stack

ROWS = 1_050_000  # about 101 MB of CSV
INTERVAL = 0.2


def big_customers_csv(path: Path, rows: int = ROWS) -> Path:
    """A deterministic customers CSV (the sample job's columns): every customer twice (the
    dedupe keeps one), some country codes in lower case; about 96 bytes a row."""
    i = pl.col("i")

    def two(e: pl.Expr) -> pl.Expr:
        return e.cast(pl.String).str.zfill(2)

    frame = pl.select(i=pl.int_range(0, rows, dtype=pl.Int64)).select(
        customer_id=i // 2,
        first_name=pl.lit("Name") + (i % 97).cast(pl.String),
        last_name=pl.lit("Family") + (i % 89).cast(pl.String),
        email=pl.lit("user") + (i // 2).cast(pl.String) + pl.lit("@example.com"),
        country_code=pl.lit("usGBdeFRJPBRINNL").str.slice((i % 8) * 2, 2),
        signup_date=pl.lit("20") + two(10 + i % 15) + "-" + two(1 + i % 12) + "-"
        + two(1 + i % 28),
        updated_at=pl.lit("2024-") + two(1 + i % 12) + "-" + two(1 + i % 28) + "T"
        + two(i % 24) + ":" + two(i % 60) + ":00",
        lifetime_value=((i * 37) % 100_000).cast(pl.String) + "." + two(i % 100),
        status=pl.lit("active,inactive,churned").str.split(",").list.get(i % 3),
    )  # fmt: skip
    frame.write_csv(path)
    return path


@dataclass
class ProgressRun:
    settings: Settings  # the flow's: this run's servers, progress every INTERVAL
    url: str  # the API's
    client: httpx.Client  # sends the token
    runner: InProcessRunner
    workflow: Workflow

    def start(self) -> str:
        """Starts the customers job's bronze and silver in a thread; its execution id."""
        execution = self.runner.store.create_execution(
            self.workflow.id, "customers", ["bronze", "silver"]
        )
        self.runner.submit(
            medallion, workflow_id=self.workflow.id, job_id="customers", execution_id=execution.id
        )
        return execution.id


@contextlib.contextmanager
def progress_run(
    stack: Stack, sample: Workflow, csv: Path, silver_memory_mb: int = 40
) -> Iterator[ProgressRun]:
    """The servers, the API and a workflow whose customers job holds `csv` in landing."""
    server_settings = stack.settings.model_copy(update={"silver_memory_limit_mb": silver_memory_mb})
    servers = {
        layer: create_server(layer, server_settings, "127.0.0.1:0", stack.object_store)
        for layer in ("bronze", "silver", "gold")
    }
    settings = stack.settings.model_copy(
        update={
            **{f"{layer}_address": f"127.0.0.1:{s.port}" for layer, s in servers.items()},
            "progress_interval_seconds": INTERVAL,
            "layer_retry_delays_seconds": [],
            "layer_deadline_seconds": 300.0,
            "api_token": SecretStr(TOKEN),
        }
    )
    workflow = sample.model_copy(update={"id": f"pg-{uuid.uuid4().hex[:8]}"})
    workflow = workflow.model_copy(
        update={"jobs": [j for j in workflow.jobs if j.id == "customers"], "gold": None}
    )
    stack.store.save_workflow(workflow)
    key = landing_prefix(JobKey(workflow.id, "customers")) + "customers.csv"
    with csv.open("rb") as data:
        stack.object_store.upload(key, data)
    runner = InProcessRunner(settings, stack.store)
    app = create_app(settings, store=stack.store, objects=stack.object_store)
    try:
        with ApiServer(app) as url:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
                yield ProgressRun(settings, url, client, runner, workflow)
    finally:
        runner.join(120)
        for server in servers.values():
            server.stop(0)
