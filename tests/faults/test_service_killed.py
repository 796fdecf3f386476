"""A layer service SIGKILLed mid-request: the caller is told at once (no hang), a restarted
service takes the retry, and no orphaned run prefix survives the next successful commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import polars as pl
import pytest

from flowforge import tables
from flowforge.layout import JobKey
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from flowforge.v1 import bronze_pb2_grpc
from tests.bronze.conftest import ingest, upload
from tests.faults.processes import ServiceProcess, service_env
from tests.faults.proxy import FaultProxy


@pytest.fixture
def bronze_process(
    settings: Settings, store_proxy: FaultProxy, tmp_path: Path
) -> Iterator[ServiceProcess]:
    proxied = settings.model_copy(update={"s3_endpoint_url": f"http://{store_proxy.address}"})
    service = ServiceProcess("bronze", service_env(proxied, tmp_path), tmp_path / "bronze.log")
    yield service.start()
    service.stop()


def test_bronze_killed_mid_request_then_restarted(
    bronze_process: ServiceProcess,
    store_proxy: FaultProxy,
    settings: Settings,
    store: ObjectStore,
    job: JobKey,
) -> None:
    bronze = TableRef.bronze(job)
    for i in range(6):
        upload(store, job, f"part-{i}.csv", b"id,name\n" + b"%d,x\n" % i * 2000)
    store_proxy.set("delay", delay_seconds=0.3)  # every S3 exchange is slow: a long request
    outcome: dict[str, object] = {}

    def call() -> None:
        with grpc.insecure_channel(bronze_process.address) as channel:
            try:
                outcome["result"] = ingest(
                    bronze_pb2_grpc.BronzeServiceStub(channel), job, run_id="killed", timeout=60
                )
            except grpc.RpcError as exc:
                outcome["code"] = exc.code()
            outcome["at"] = time.monotonic()

    def written() -> list[str]:
        return [o.key for o in store.list(bronze.prefix)]

    caller = threading.Thread(target=call)
    caller.start()
    # Kill once the run has started writing data files into the table's folder.
    until = time.monotonic() + 30
    while not written() and time.monotonic() < until:
        time.sleep(0.1)
    assert written(), "the run never started writing"
    bronze_process.kill()
    killed_at = time.monotonic()
    caller.join(30)
    assert not caller.is_alive(), "the caller hangs on a dead service"
    assert outcome.get("code") == grpc.StatusCode.UNAVAILABLE, outcome
    assert float(outcome["at"]) - killed_at < 5  # type: ignore[arg-type]
    assert tables.load(settings, bronze) is None  # nothing half-published
    orphaned = set(written())
    assert orphaned  # the killed attempt's files stay beside the table, in no version

    store_proxy.set("pass")
    bronze_process.start()  # same port: the caller's address does not change
    with grpc.insecure_channel(bronze_process.address) as channel:
        result = ingest(bronze_pb2_grpc.BronzeServiceStub(channel), job, run_id="retry")
    assert result.rows_out == 6 * 2000
    table = tables.require(settings, bronze, "bronze")
    assert [c.run_id for c in tables.history(table)] == ["retry"]
    bucket = f"s3://{store.bucket}/"
    committed = {uri.removeprefix(bucket) for uri in table.file_uris()}
    assert committed == {o.key for o in result.data_objects}
    assert not committed & orphaned  # readers never see the killed attempt's files
    rows = pl.read_delta(bronze.uri(settings), storage_options=tables.polars_options(settings))
    assert rows.height == 6 * 2000
