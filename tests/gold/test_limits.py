"""Memory, spill and time limits: real queries against a server with small limits."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import polars as pl
import psutil
import pytest

from flowforge import errors
from flowforge.layout import JobKey
from flowforge.runtime import RETRYABLE_KEY
from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from flowforge.v1 import common_pb2, gold_pb2, gold_pb2_grpc
from orchestrator.clients import GoldClient
from services.layers import create_server
from tests.gold.conftest import build, commit_silver, gold_objects, serving

# About 300 MB of hash table: far beyond a 100 MB memory limit, so it must spill.
MANY_GROUPS = (
    "SELECT count(*) AS groups FROM (SELECT md5(i::VARCHAR) AS h, count(*) AS n "
    "FROM silver, range(3000000) AS r(i) GROUP BY h)"
)
ENDLESS = "SELECT count(*) AS n FROM silver, range(1000000000000) AS r(i)"
# One function call of minutes that never looks at DuckDB's interrupt flag (about 16 s
# for 60,000 characters each on this machine's cores; this is 11 times that work).
BLOCKING = "SELECT levenshtein(repeat('a', 200000), repeat('b', 200000)) AS d FROM silver"
# Single values DuckDB's memory limit does not bound (each past 1 GB, some far past).
HUGE_VALUES = {
    "repeat_1_5e9": "SELECT length(repeat('x', 1500000000)) AS n FROM silver",
    "repeat_3e9": "SELECT length(repeat('x', 3000000000)) AS n FROM silver",
    "range_2e9": "SELECT len(range(2000000000)) AS n FROM silver",
    "nested_repeat": "SELECT length(repeat(repeat('x', 1000000000), 4)) AS n FROM silver",
}
# The process's address space holds some 300 MB of code, thread stacks and allocator
# reserves besides DuckDB's memory, and DuckDB allocates a little beyond its own limit.
LIMITS = {
    "gold_memory_limit": "100MB",
    "gold_process_memory_limit": "1GB",
    "gold_threads": 1,
    "gold_model_timeout_seconds": 4.0,
}


class Limited:
    def __init__(self, settings: Settings, store: ObjectStore, **update: Any) -> None:
        self.settings = settings.model_copy(update=LIMITS | update)
        self.server = create_server("gold", self.settings, "127.0.0.1:0", store)
        self.address = f"127.0.0.1:{self.server.port}"
        self.channel = grpc.insecure_channel(self.address)
        self.stub = gold_pb2_grpc.GoldServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(0)


@pytest.fixture(scope="module")
def limited(settings: Settings, store: ObjectStore) -> Iterator[Limited]:
    server = Limited(settings, store)
    yield server
    server.close()


@pytest.fixture(scope="module")
def spilling(
    settings: Settings, store: ObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Limited]:
    # Time enough for a spilling query on a busy machine: these tests are about space.
    spill = tmp_path_factory.mktemp("spill")
    server = Limited(settings, store, gold_temp_directory=spill, gold_model_timeout_seconds=300)
    yield server
    server.close()


@pytest.fixture(scope="module")
def small_process(settings: Settings, store: ObjectStore) -> Iterator[Limited]:
    server = Limited(settings, store, gold_process_memory_limit="512MB")
    yield server
    server.close()


@pytest.fixture
def one_row(settings: Settings, job: JobKey) -> JobKey:
    commit_silver(settings, job, pl.DataFrame({"x": [1]}))
    return job


@pytest.fixture
def gold_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="flowforge")
    return caplog


def build_pids(caplog: pytest.LogCaptureFixture) -> list[int]:
    """The processes builds ran in, as the service logged them."""
    return [r.pid for r in caplog.records if r.getMessage() == "gold build started"]  # type: ignore[attr-defined]


def model_started(caplog: pytest.LogCaptureFixture, model: str) -> bool:
    return any(
        r.getMessage() == "gold model started" and r.model == model  # type: ignore[attr-defined]
        for r in caplog.records
    )


def wait_until(condition: Any, what: str, seconds: float = 30) -> None:
    ends = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < ends, f"still waiting for {what}"
        time.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def assert_serves_the_next_build(limited: Limited, job: JobKey) -> None:
    assert serving(limited.channel)
    result = build(limited.stub, job, {"after": "SELECT count(*) AS n FROM silver"})
    assert [m.name for m in result.models] == ["after", "profile"]


def not_retryable(caught: pytest.ExceptionInfo[grpc.RpcError]) -> bool:
    return (RETRYABLE_KEY, "false") in tuple(caught.value.trailing_metadata() or ())


def test_a_model_beyond_the_memory_limit_spills_and_succeeds(
    spilling: Limited, store: ObjectStore, one_row: JobKey, gold_log: pytest.LogCaptureFixture
) -> None:
    result = build(spilling.stub, one_row, {"groups": MANY_GROUPS}, skip_profile=True)
    assert pl.read_parquet(store.get_bytes(result.models[0].key)).item() == 3_000_000
    (built,) = [r for r in gold_log.records if r.getMessage() == "gold model built"]
    assert built.model == "groups" and built.peak_spill_mb > 0  # type: ignore[attr-defined]
    assert list(spilling.settings.gold_temp_directory.iterdir()) == []  # type: ignore[union-attr]


def test_running_out_of_spill_space_is_resource_exhausted(
    settings: Settings, store: ObjectStore, one_row: JobKey
) -> None:
    # A separate server: the spill cap is a setting of the build, not of the query.
    capped = Limited(settings, store, gold_max_temp_size="1MB", gold_model_timeout_seconds=300)
    try:
        with pytest.raises(grpc.RpcError) as caught:
            build(capped.stub, one_row, {"groups": MANY_GROUPS}, skip_profile=True)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert caught.value.details().startswith("model 'groups' needs more memory or spill")
        assert "FLOWFORGE_GOLD_MAX_TEMP_SIZE=1MB" in caught.value.details()
        assert not_retryable(caught)  # the same model over the same data needs as much again
        assert serving(capped.channel)
    finally:
        capped.close()
    assert gold_objects(store, one_row) == []


@pytest.mark.parametrize("label", list(HUGE_VALUES))
def test_a_huge_single_value_hits_the_process_memory_limit(
    small_process: Limited, store: ObjectStore, one_row: JobKey, label: str
) -> None:
    service = psutil.Process()  # the server runs in this process; the build does not
    before = service.memory_info().rss
    with pytest.raises(grpc.RpcError) as caught:
        build(small_process.stub, one_row, {label: HUGE_VALUES[label]}, skip_profile=True)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value.details()
    details = caught.value.details()
    assert details.startswith(f"model {label!r} needs more memory than a gold build's process")
    assert "FLOWFORGE_GOLD_PROCESS_MEMORY_LIMIT=512MB" in details
    assert not_retryable(caught)
    assert service.memory_info().rss - before < 64 << 20
    assert gold_objects(store, one_row) == []
    assert_serves_the_next_build(small_process, one_row)


def test_the_orchestrator_does_not_retry_a_model_over_its_limits(
    small_process: Limited, one_row: JobKey
) -> None:
    request = gold_pb2.BuildRequest(
        job=common_pb2.JobRef(workflow_id=one_row.workflow_id, job_id=one_row.job_id),
        spec=gold_pb2.GoldSpec(
            models=[gold_pb2.Model(name="huge", sql=HUGE_VALUES["repeat_3e9"])], skip_profile=True
        ),
    )
    with (
        GoldClient(small_process.settings, small_process.address) as client,
        pytest.raises(errors.ResourceExhausted) as caught,
    ):
        client.build(request)
    assert not caught.value.retryable  # the flow's retry condition reads exactly this
    assert "model 'huge'" in caught.value.message


def test_a_model_past_its_time_limit_is_deadline_exceeded(
    limited: Limited, one_row: JobKey, gold_log: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        build(limited.stub, one_row, {"endless": ENDLESS}, skip_profile=True)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "model 'endless' ran longer than 4s" in caught.value.details()
    assert "FLOWFORGE_GOLD_MODEL_TIMEOUT_SECONDS" in caught.value.details()
    assert not_retryable(caught)
    (pid,) = build_pids(gold_log)
    assert gone(pid)  # the query stopped with its process
    assert_serves_the_next_build(limited, one_row)


def test_a_function_call_that_ignores_interrupts_is_killed_at_the_time_limit(
    limited: Limited, one_row: JobKey, gold_log: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        build(limited.stub, one_row, {"blocking": BLOCKING}, skip_profile=True, timeout=90)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, caught.value.details()
    assert "model 'blocking' ran longer than 4s" in caught.value.details()
    # Uninterrupted, the call runs for minutes: the answer came from the kill.
    assert time.monotonic() - started < 60
    (pid,) = build_pids(gold_log)
    assert gone(pid)
    assert_serves_the_next_build(limited, one_row)


def test_a_caller_that_gives_up_stops_the_query_and_nothing_commits(
    limited: Limited, store: ObjectStore, one_row: JobKey, gold_log: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        build(limited.stub, one_row, {"endless": ENDLESS}, skip_profile=True, timeout=1.5)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_until(lambda: len(build_pids(gold_log)) == 1, "the build's process to be logged")
    (pid,) = build_pids(gold_log)
    wait_until(lambda: gone(pid), "the abandoned build's process to be killed")
    wait_until(lambda: not gold_objects(store, one_row), "the run's objects to be removed")
    assert_serves_the_next_build(limited, one_row)


def test_builds_over_the_cap_wait_for_a_slot(
    settings: Settings, store: ObjectStore, one_row: JobKey, gold_log: pytest.LogCaptureFixture
) -> None:
    single = Limited(settings, store, gold_max_concurrent_builds=1)
    quick = {"quick": "SELECT count(*) AS n FROM silver"}
    try:
        with ThreadPoolExecutor(2) as pool:
            endless = pool.submit(build, single.stub, one_row, {"endless": ENDLESS})
            wait_until(lambda: build_pids(gold_log), "the first build to take the slot")
            # Its deadline passes while the only slot is taken ...
            with pytest.raises(grpc.RpcError) as caught:
                build(single.stub, one_row, quick, skip_profile=True, timeout=1)
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # ... and with time enough it runs once the slot is free.
            waiting = pool.submit(build, single.stub, one_row, quick, skip_profile=True)
            result = waiting.result(timeout=60)
            assert endless.done()  # it held the slot until its time limit ended it
            with pytest.raises(grpc.RpcError) as ended:
                endless.result()
            assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert result.models[0].rows == 1
        assert len(build_pids(gold_log)) == 2  # the build that gave up never started one
    finally:
        single.close()


@pytest.mark.parametrize(
    ("signal_number", "code"),
    [(signal.SIGSEGV, grpc.StatusCode.INTERNAL), (signal.SIGKILL, grpc.StatusCode.UNAVAILABLE)],
)
def test_a_build_process_that_dies_under_a_model_fails_only_that_build(
    limited: Limited,
    store: ObjectStore,
    one_row: JobKey,
    gold_log: pytest.LogCaptureFixture,
    signal_number: int,
    code: grpc.StatusCode,
) -> None:
    # A crash in DuckDB, or the kernel's OOM killer, caused for real with a signal.
    with ThreadPoolExecutor(1) as pool:
        endless = pool.submit(build, limited.stub, one_row, {"endless": ENDLESS})
        wait_until(lambda: model_started(gold_log, "endless"), "the model to start")
        (pid,) = build_pids(gold_log)
        os.kill(pid, signal_number)
        with pytest.raises(grpc.RpcError) as caught:
            endless.result(timeout=60)
    assert caught.value.code() == code, caught.value.details()
    if code == grpc.StatusCode.UNAVAILABLE:
        assert "killed from outside (SIGKILL) while model 'endless'" in caught.value.details()
    else:
        assert caught.value.details().startswith("internal error (incident ")
        assert any(
            r.getMessage() == "gold build process ended (signal SIGSEGV) while model 'endless'"
            for r in gold_log.records
        )
    assert gold_objects(store, one_row) == []
    assert_serves_the_next_build(limited, one_row)
