"""A caller's deadline passing while bronze still reads a slow stream: the service stops
at the deadline, logs the request, and leaves nothing waiting on the stream."""

from __future__ import annotations

import logging

import grpc
import pytest

from flowforge import tables
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from flowforge.v1 import bronze_pb2_grpc
from tests.bronze.conftest import ingest, nothing_left_reading, serving, upload
from tests.faults.proxy import FaultProxy
from tests.waiting import wait_until


def request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "rpc", None) == "Ingest"]


def test_the_deadline_passing_mid_stream_ends_the_request_and_its_threads(
    limited_bronze: bronze_pb2_grpc.BronzeServiceStub,
    limited_channel: grpc.Channel,
    store_proxy: FaultProxy,
    settings: Settings,
    store: ObjectStore,
    job: JobKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="flowforge")
    rows = 100_000
    data = b"id,note\n" + b"".join(b"%d,%s\n" % (i, b"v" * 100) for i in range(rows))
    upload(store, job, "slow.csv", data)
    # About 0.6 MB/s: the 10 MB take some 16 s to arrive, the caller gives it 2 s.
    store_proxy.set("delay", delay_seconds=0.1)
    with pytest.raises(grpc.RpcError) as caught:
        ingest(limited_bronze, job, timeout=2)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    # The service gives up too, at the deadline (its reads of the stream end there), long
    # before the file could have arrived; its request line says so.
    wait_until(lambda: request_lines(caplog), 10, "logged")
    (line,) = request_lines(caplog)
    assert line.code == "DEADLINE_EXCEEDED"  # type: ignore[attr-defined]
    assert line.error.startswith("deadline exceeded while")  # type: ignore[attr-defined]
    assert (line.workflow_id, line.job_id) == (job.workflow_id, job.job_id)  # type: ignore[attr-defined]
    wait_until(nothing_left_reading, 10, "done with the stream")
    assert tables.load(settings, TableRef.bronze(job)) is None  # nothing committed

    store_proxy.set("pass")
    assert serving(limited_channel)
    assert ingest(limited_bronze, job).rows_out == rows
