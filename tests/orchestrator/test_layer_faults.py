"""The flow against a silver that misbehaves on purpose: a small real gRPC server on
loopback in front of the real silver, answering a status code a given number of times
before it forwards, or altering the real silver's answer. The flow's silver_address points
at it; bronze, gold, SeaweedFS, PostgreSQL and Prefect are the real ones of the stack."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
import pytest

from flowforge.errors import FailedPrecondition, FlowForgeError, InvalidArgument
from flowforge.layout import Dataset, JobKey
from flowforge.manifest import read_committed
from flowforge.settings import Settings
from flowforge.v1 import common_pb2, silver_pb2, silver_pb2_grpc
from orchestrator.runner import InProcessRunner
from orchestrator.trigger import cancel_execution, trigger_execution
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import Stack
from tests.sample_oracle import EXPECTED

DEADLINE_SECONDS = 20.0  # FLOWFORGE_LAYER_DEADLINE_SECONDS of these runs (the stack's is 60)


def carries_the_deadline(remaining: float) -> bool:
    """What the server saw left of the call: the deadline, give or take gRPC's rounding of
    the timeout to its wire units (a little over it may arrive)."""
    return 0 < remaining <= DEADLINE_SECONDS + 0.5


RETRY_DELAY = 0.5
# The channel itself retries UNAVAILABLE within one call, up to 4 attempts (clients.py):
# answering it 4 times makes the first attempt of the layer task fail.
IN_CALL_ATTEMPTS = {grpc.StatusCode.UNAVAILABLE: 4}


@dataclass
class ScriptedSilver(silver_pb2_grpc.SilverServiceServicer):
    """Answers `code` to the first `times` Refine calls, then forwards to the real silver
    (and hands its answer to `alter`, when given). Records every call's time and deadline."""

    real: silver_pb2_grpc.SilverServiceStub
    code: grpc.StatusCode | None = None
    times: int = 0
    alter: Callable[[common_pb2.LayerResult], None] | None = None
    # When given: Refine sets `entered`, then waits for `gate` before it forwards.
    entered: threading.Event | None = None
    gate: threading.Event | None = None
    calls: list[tuple[float, float]] = field(default_factory=list)  # (monotonic, remaining)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def message(self) -> str:
        assert self.code is not None
        return f"{self.code.name} from the scripted silver"

    def Refine(  # noqa: N802 (gRPC method name)
        self, request: silver_pb2.RefineRequest, context: grpc.ServicerContext
    ) -> common_pb2.LayerResult:
        with self._lock:
            self.calls.append((time.monotonic(), context.time_remaining()))
            number = len(self.calls)
        if self.code is not None and number <= self.times:
            context.abort(self.code, self.message)
        if self.entered is not None and self.gate is not None:
            self.entered.set()
            self.gate.wait(DEADLINE_SECONDS)
        result = self.real.Refine(request, timeout=context.time_remaining())
        if self.alter is not None:
            self.alter(result)
        return result


@contextmanager
def scripted_silver(
    stack: Stack, servicer_of: Callable[..., ScriptedSilver]
) -> Iterator[tuple[ScriptedSilver, Settings]]:
    """The scripted silver on a free loopback port, the flow's settings pointing at it."""
    channel = grpc.insecure_channel(stack.settings.silver_address)
    servicer = servicer_of(silver_pb2_grpc.SilverServiceStub(channel))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    silver_pb2_grpc.add_SilverServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    settings: Settings = stack.settings.model_copy(
        update={
            "silver_address": f"127.0.0.1:{port}",
            "layer_retry_delays_seconds": [RETRY_DELAY] * 3,
            "layer_deadline_seconds": DEADLINE_SECONDS,
        }
    )
    try:
        yield servicer, settings
    finally:
        server.stop(0).wait()
        channel.close()


@pytest.fixture(scope="module")
def ingested(stack: Stack, sample_workflow: Workflow) -> Workflow:
    """A workflow whose products job has committed bronze: the runs here start at silver."""
    workflow = stack.add_workflow(sample_workflow)
    result = stack.flow(workflow_id=workflow.id, job_id="products", to_layer="bronze")
    assert stack.store.get_execution(result["execution_id"]).status == "COMPLETED"
    return workflow


TRANSIENT = [
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
]


@pytest.mark.parametrize("code", TRANSIENT, ids=lambda c: c.name)
def test_transient_errors_are_retried_with_backoff(
    stack: Stack, ingested: Workflow, code: grpc.StatusCode
) -> None:
    times = IN_CALL_ATTEMPTS.get(code, 1)
    scripted = scripted_silver(stack, lambda real: ScriptedSilver(real, code, times))
    with scripted as (silver, settings):
        result = stack.flow(
            settings,
            workflow_id=ingested.id,
            job_id="products",
            from_layer="silver",
            to_layer="silver",
            full_refresh=True,  # every test of the module reads all of bronze again
        )
    execution = stack.store.get_execution(result["execution_id"])
    assert execution.status == "COMPLETED", execution.error
    step = execution.step("silver")
    assert step.attempts >= 2, "the layer task was not retried"
    assert (step.status, step.rows_in, step.rows_out, step.rows_rejected) == (
        "COMPLETED", *EXPECTED["products"]["silver"]
    )  # fmt: skip
    assert len(silver.calls) == times + 1  # the scripted answers, then the real silver once
    waited = silver.calls[times][0] - silver.calls[times - 1][0]
    assert waited >= RETRY_DELAY * 0.9, f"retried after {waited:.2f}s, not after the delay"
    for _, remaining in silver.calls:  # every call, retries too, carries the deadline
        assert carries_the_deadline(remaining)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        pytest.param(grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument, id="INVALID_ARGUMENT"),
        pytest.param(
            grpc.StatusCode.FAILED_PRECONDITION, FailedPrecondition, id="FAILED_PRECONDITION"
        ),
    ],
)
def test_terminal_errors_fail_at_once_with_the_services_message(
    stack: Stack, ingested: Workflow, code: grpc.StatusCode, error: type[FlowForgeError]
) -> None:
    with (
        scripted_silver(stack, lambda real: ScriptedSilver(real, code, times=1)) as (
            silver,
            settings,
        ),
        pytest.raises(error) as raised,
    ):
        stack.flow(settings, workflow_id=ingested.id, job_id="products", from_layer="silver")
    # What the scripted service sent, as its code's name says it: the flow keeps it whole.
    sent = f"{code.name} from the scripted silver"
    assert raised.value.message == sent
    execution = stack.store.list_executions(workflow_id=ingested.id, limit=1)[0]
    assert execution.status == "FAILED"
    assert execution.error == f"silver: {sent}"
    assert [(s.layer, s.status) for s in execution.steps] == [
        ("silver", "FAILED"), ("gold", "SKIPPED")
    ]  # fmt: skip
    assert execution.step("silver").attempts == 1
    assert execution.step("silver").error == sent
    assert len(silver.calls) == 1  # not retried, neither by the channel nor by the task
    assert carries_the_deadline(silver.calls[0][1])


def test_counts_that_do_not_add_up_fail_the_execution_with_the_balance_sheet(
    stack: Stack, ingested: Workflow
) -> None:
    """Silver reports 3 rows fewer than it wrote: a fault the real services never produce
    (their counts come from what they commit), so the scripted silver alters its answer.
    Every layer completes; the balance sheet says rows went missing and the execution fails."""

    def lose_rows(result: common_pb2.LayerResult) -> None:
        result.rows_out -= 3

    with (
        scripted_silver(stack, lambda real: ScriptedSilver(real, alter=lose_rows)) as (_, settings),
        pytest.raises(FailedPrecondition, match="^rows unaccounted for"),
    ):
        stack.flow(
            settings,
            workflow_id=ingested.id,
            job_id="products",
            from_layer="silver",
            full_refresh=True,
        )
    rows_in, rows_out, quarantined = EXPECTED["products"]["silver"]
    duplicates = rows_in - rows_out - quarantined
    execution = stack.store.list_executions(workflow_id=ingested.id, limit=1)[0]
    assert execution.status == "FAILED"
    assert execution.error == (
        "rows unaccounted for: bronze rows = silver + quarantined + duplicates removed: "
        f"{rows_in} != {rows_out - 3 + quarantined + duplicates}"
    )
    assert [s.status for s in execution.steps] == ["COMPLETED", "COMPLETED"]
    assert execution.balance is not None and execution.balance["balanced"] is False
    assert execution.balance["figures"]["silver_rows"] == rows_out - 3
    assert [(c["name"], c["ok"]) for c in execution.balance["checks"]] == [
        ("bronze rows = silver + quarantined + duplicates removed", False)
    ]


def test_a_cancel_stops_the_run_before_its_next_layer(
    stack: Stack, sample_workflow: Workflow
) -> None:
    """Cancelled while silver works: silver's call finishes, gold is never called."""
    workflow = stack.add_workflow(sample_workflow)
    stack.flow(workflow_id=workflow.id, job_id="products", to_layer="bronze")
    entered, gate = threading.Event(), threading.Event()
    scripted = scripted_silver(stack, lambda real: ScriptedSilver(real, entered=entered, gate=gate))
    with scripted as (silver, settings):
        runner = InProcessRunner(settings, stack.store)
        execution = trigger_execution(
            settings, workflow.id, "products", "silver", store=stack.store, runner=runner
        )
        assert entered.wait(DEADLINE_SECONDS), "silver was never called"
        cancel_execution(settings, execution.id, store=stack.store)
        gate.set()
        runner.join()
    ended = stack.store.get_execution(execution.id)
    assert ended.status == "CANCELLED"
    gold_step = ended.step("gold")
    assert (gold_step.status, gold_step.started_at, gold_step.attempts) == ("SKIPPED", None, 0)
    gold = Dataset.for_layer("gold", JobKey(workflow.id, "products"))
    assert read_committed(stack.object_store, gold) is None
    assert len(silver.calls) == 1
