"""Flow-level fault fixtures: the medallion flow against services whose object store (or
whose process) a test can break. Shares the session's Prefect server and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pydantic import SecretStr

from flowforge import tables
from flowforge.dimensions import upload_dimension_file
from flowforge.embedded import EmbeddedS3
from flowforge.layout import LAYERS, Dataset, JobKey
from flowforge.manifest import read_committed
from flowforge.runtime import LayerServer
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.tables import TableRef
from orchestrator.store import ExecutionRecord, Store
from services.layers import create_server
from tests.faults.processes import ServiceProcess, service_env
from tests.faults.proxy import FaultProxy
from tests.orchestrator.conftest import ROOT, Stack, postgres_schema_url, sample_workflow, stack

__all__ = ["postgres_schema_url", "sample_workflow", "stack"]


def through(proxy: FaultProxy, settings: Settings, **update: object) -> Settings:
    """`settings` reaching the object store through `proxy` and failing fast (one attempt,
    a 1 s connect timeout: a refused store is seen at once); `update` on top."""
    fail_fast = {"s3_max_attempts": 1, "s3_connect_timeout_seconds": 1}
    endpoint = {"s3_endpoint_url": f"http://{proxy.address}"}
    return settings.model_copy(update=endpoint | fail_fast | update)


@pytest.fixture
def store_proxy(s3: EmbeddedS3) -> Iterator[FaultProxy]:
    endpoint = urlparse(s3.endpoint_url)
    proxy = FaultProxy((endpoint.hostname or "127.0.0.1", endpoint.port or 80))
    yield proxy
    proxy.close()


@dataclass
class FaultStack(Stack):
    """A Stack whose services reach the object store through `proxy` (shared by all
    layers), each through its own `layer_proxies[layer]` first (to break the store for one
    layer only); `processes` holds the layers started as child processes (which a test may
    SIGKILL)."""

    proxy: FaultProxy | None = None
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    layer_proxies: dict[str, FaultProxy] = field(default_factory=dict)


@pytest.fixture
def fault_stack(
    request: pytest.FixtureRequest,
    settings: Settings,
    store: ObjectStore,
    store_proxy: FaultProxy,
    postgres_schema_url: str,
    prefect_api: str,
    tmp_path: Path,
) -> Iterator[FaultStack]:
    """All three services through the proxy. Layers named by indirect parametrization
    (`@pytest.mark.parametrize("fault_stack", [("bronze",)], indirect=True)`) run as
    child processes instead of in this one."""
    as_process = set(getattr(request, "param", ()))
    servers: dict[str, LayerServer] = {}
    processes: dict[str, ServiceProcess] = {}
    addresses: dict[str, str] = {}
    layer_proxies: dict[str, FaultProxy] = {}
    for layer in LAYERS:
        layer_proxies[layer] = FaultProxy(("127.0.0.1", store_proxy.port))
        service_settings = through(layer_proxies[layer], settings, s3_read_timeout_seconds=10)
        if layer in as_process:
            env = service_env(service_settings, tmp_path / layer, FLOWFORGE_S3_MAX_ATTEMPTS="1")
            processes[layer] = ServiceProcess(layer, env, tmp_path / f"{layer}.log").start()
            addresses[layer] = processes[layer].address
        else:
            servers[layer] = create_server(
                layer, service_settings, "127.0.0.1:0", ObjectStore(service_settings)
            )
            addresses[layer] = f"127.0.0.1:{servers[layer].port}"
    flow_settings = settings.model_copy(
        update={
            "database_url": SecretStr(postgres_schema_url),
            **{f"{layer}_address": address for layer, address in addresses.items()},
            "layer_retry_delays_seconds": [1.0, 1.0, 2.0, 2.0, 2.0, 2.0],
            "layer_deadline_seconds": 60.0,
        }
    )
    upload_dimension_file(store, "countries", ROOT / "examples" / "dimensions" / "countries.csv")
    stack = FaultStack(
        flow_settings,
        Store.open(flow_settings),
        store,
        servers,
        store_proxy,
        processes,
        layer_proxies,
    )
    try:
        yield stack
    finally:
        stack.store.close()
        for server in servers.values():
            server.stop(0)
        for process in processes.values():
            process.stop()
        for proxy in layer_proxies.values():
            proxy.close()


def one_output_per_layer(
    store: ObjectStore, execution: ExecutionRecord, strays: bool = False
) -> None:
    """Each layer committed exactly one run, the execution's, and holds nothing else: no
    orphaned run prefix or data file, no object its manifest or table does not list.
    `strays`: a killed bronze attempt's files may remain beside its tables (never in them;
    a vacuum removes them: bronze deletes no file it cannot prove uncommitted)."""
    job = JobKey(execution.workflow_id, execution.job_id)
    for layer in LAYERS:
        run_id = execution.step(layer).run_id
        if layer == "bronze":
            for ref in (TableRef.bronze(job), TableRef.bronze_rejects(job)):
                one_commit(store, ref, run_id, strays)
            continue
        dataset = Dataset.for_layer(layer, job)
        committed = read_committed(store, dataset)
        assert committed is not None, layer
        assert committed.manifest.run_id == run_id, layer
        keys = {o.key for o in store.list(dataset.prefix)}
        listed = {o.key for o in committed.manifest.data_objects} | {
            o.key for o in committed.manifest.reject_objects
        }
        assert keys == listed | {dataset.manifest_key}, (layer, keys - listed)


def one_commit(store: ObjectStore, ref: TableRef, run_id: str, strays: bool = False) -> None:
    """The table's one write is the run's, and its folder holds that version's files (and,
    with `strays`, files no version references)."""
    table = tables.require(store.settings, ref, str(ref))
    writes = [c.run_id for c in tables.history(table) if c.operation != "ADD COLUMN"]
    assert writes == [run_id], ref
    bucket = f"s3://{store.bucket}/"
    files = {o.key for o in store.list(ref.prefix) if "/_delta_log/" not in o.key}
    committed = {uri.removeprefix(bucket) for uri in table.file_uris()}
    assert committed <= files, ref
    assert strays or files == committed, (ref, files - committed)
