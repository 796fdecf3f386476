"""A layer service SIGKILLed mid-request: the caller is told at once (no hang), a restarted
service takes the retry, and no orphaned run prefix survives the next successful commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from flowforge.layout import Dataset, JobKey
from flowforge.manifest import read_committed
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
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
    bronze_process: ServiceProcess, store_proxy: FaultProxy, store: ObjectStore, job: JobKey
) -> None:
    dataset = Dataset.for_layer("bronze", job)
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

    caller = threading.Thread(target=call)
    caller.start()
    # Kill once the run has started writing under its prefix.
    until = time.monotonic() + 30
    while not list(store.list(dataset.run_prefix("killed"))) and time.monotonic() < until:
        time.sleep(0.1)
    assert list(store.list(dataset.run_prefix("killed"))), "the run never started writing"
    bronze_process.kill()
    killed_at = time.monotonic()
    caller.join(30)
    assert not caller.is_alive(), "the caller hangs on a dead service"
    assert outcome.get("code") == grpc.StatusCode.UNAVAILABLE, outcome
    assert float(outcome["at"]) - killed_at < 5  # type: ignore[arg-type]
    assert read_committed(store, dataset) is None  # nothing half-published
    orphaned = list(store.list(dataset.run_prefix("killed")))
    assert orphaned  # the killed run's objects are left behind ... for now

    store_proxy.set("pass")
    bronze_process.start()  # same port: the caller's address does not change
    with grpc.insecure_channel(bronze_process.address) as channel:
        result = ingest(bronze_pb2_grpc.BronzeServiceStub(channel), job, run_id="retry")
    assert result.rows_out == 6 * 2000
    committed = read_committed(store, dataset)
    assert committed is not None and committed.manifest.run_id == "retry"
    # ... and the next successful commit removed them: only the committed run remains.
    keys = [o.key for o in store.list(dataset.prefix)]
    assert {k[len(dataset.prefix) :].split("/", 1)[0] for k in keys} == {
        "_manifest.json",
        "run=retry",
    }
