"""`flowforge demo`: the sample data through the pipeline on the embedded stack."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from flowforge.embedded import EmbeddedS3
from flowforge.layout import JobKey, landing_prefix
from flowforge.logs import configure_logging
from flowforge.services_registry import LAYER_SERVICES
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2, bronze_pb2_grpc, common_pb2

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SAMPLE_JOB = JobKey("customer-data", "customers")


def embedded_settings(settings: Settings, s3: EmbeddedS3) -> Settings:
    return settings.model_copy(
        update={
            "s3_endpoint_url": s3.endpoint_url,
            "s3_access_key_id": s3.access_key,
            "s3_secret_access_key": _secret(s3.secret_key),
        }
    )


def _secret(value: str):  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    return SecretStr(value)


def run_demo(settings: Settings, keep: bool = False) -> int:
    console = Console()
    configure_logging(settings.model_copy(update={"log_level": "WARNING", "log_format": "text"}))
    state = Path(tempfile.mkdtemp(prefix="flowforge-demo-"))
    with ExitStack() as stack:
        if not keep:
            stack.callback(shutil.rmtree, state, True)
        console.print("[bold]FlowForge demo[/]: starting the embedded object store (SeaweedFS)")
        s3 = EmbeddedS3(state / "s3", "flowforge", secrets.token_urlsafe(24), settings.s3_bucket)
        stack.enter_context(s3)
        settings = embedded_settings(settings, s3)
        store = ObjectStore(settings)
        bronze = LAYER_SERVICES["bronze"].factory()(settings, "127.0.0.1:0", store)
        stack.callback(bronze.stop, 1.0)
        console.print(f"bronze service on 127.0.0.1:{bronze.port}, S3 on {s3.endpoint_url}")
        sample = EXAMPLES / "data" / "customers.csv"
        key = landing_prefix(SAMPLE_JOB) + sample.name
        store.put_bytes(key, sample.read_bytes(), content_type="text/csv")
        console.print(f"uploaded {sample.name} to s3://{settings.s3_bucket}/{key}")
        with grpc.insecure_channel(f"127.0.0.1:{bronze.port}") as channel:
            result = bronze_pb2_grpc.BronzeServiceStub(channel).Ingest(
                bronze_pb2.IngestRequest(
                    job=common_pb2.JobRef(
                        workflow_id=SAMPLE_JOB.workflow_id, job_id=SAMPLE_JOB.job_id
                    )
                ),
                timeout=60,
            )
        print_layer_result(console, result)
        if keep:
            console.print(f"state kept in {state}")
    return 0


def print_layer_result(console: Console, result: common_pb2.LayerResult) -> None:
    table = Table(
        title=f"{result.layer} · {result.job.workflow_id}/{result.job.job_id} · run {result.run_id}"
    )
    for column in ("rows in", "rows out", "rejected", "seconds", "committed manifest"):
        table.add_column(column)
    table.add_row(
        str(result.rows_in),
        str(result.rows_out),
        str(result.rows_rejected),
        f"{result.duration.ToTimedelta().total_seconds():.2f}",
        result.manifest_key,
    )
    console.print(table)
    for file in result.files:
        console.print(
            f"  {file.key}: {file.status}, delimiter {file.delimiter!r}, header {file.header}, "
            f"{file.encoding}{' with BOM' if file.bom else ''}, {file.line_terminator}, "
            f"{file.rows} rows, {file.rows_rejected} rejected"
        )
    for reason, count in result.rejected_by_reason.items():
        console.print(f"  rejected ({reason}): {count}")
    for warning in result.warnings:
        console.print(f"  [yellow]warning[/]: {warning}")
