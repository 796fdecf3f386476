"""Upload triggers through the real stack (SeaweedFS, the services, PostgreSQL store), with
the clock of fire_due() given, so the debounce is tested without waiting for it."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from datetime import datetime, timedelta

from flowforge.layout import JobKey, landing_prefix
from orchestrator.automation_spec import Trigger
from orchestrator.store import ExecutionRecord, ExecutionStatus, Store
from orchestrator.store.models import utcnow
from orchestrator.triggers import fire_due, note_uploads, scan_landing
from orchestrator.workflows import Workflow
from tests.orchestrator.conftest import ROOT, Stack
from tests.orchestrator.test_end_to_end import wait_for

CUSTOMERS = ROOT / "examples" / "data" / "customers.csv"
LATER = timedelta(hours=1)  # a clock past any debounce


def triggered(stack: Stack, sample: Workflow, debounce: float = 30.0) -> Workflow:
    """The sample workflow under a fresh id, `customers` triggered on upload, landing empty."""
    jobs = [
        j.model_copy(update={"trigger": Trigger(on_upload=True, debounce_seconds=debounce)})
        if j.id == "customers"
        else j
        for j in sample.jobs
    ]
    workflow = sample.model_copy(update={"id": f"tr-{uuid.uuid4().hex[:8]}", "jobs": jobs})
    stack.store.save_workflow(workflow)
    return workflow


def parts(count: int) -> list[tuple[str, bytes, int]]:
    """customers.csv split into `count` files (each with the header): name, bytes, and its
    data rows as the csv module counts them."""
    with CUSTOMERS.open(encoding="utf-8", newline="") as handle:
        header, *records = list(csv.reader(handle))
    made = []
    for i in range(count):
        chunk = records[i::count]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([header, *chunk])
        made.append((f"part-{i}.csv", out.getvalue().encode(), len(chunk)))
    return made


def land(stack: Stack, workflow: Workflow, name: str, data: bytes) -> dict[str, str]:
    key = landing_prefix(JobKey(workflow.id, "customers")) + name
    stack.object_store.put_bytes(key, data, content_type="text/csv")
    info = stack.object_store.head(key)
    assert info is not None
    return {key: info.etag}


def fired(
    stack: Stack, workflow: Workflow, store: Store | None = None, now: datetime | None = None
) -> list[ExecutionRecord]:
    """What fire_due() started for this workflow (other tests leave none pending)."""
    started = fire_due(stack.settings, store or stack.store, stack.runner(), now=now)
    return [e for e in started if e.workflow_id == workflow.id]


def executions_of(store: Store, workflow: Workflow) -> list[str]:
    return [e.id for e in store.list_executions(workflow.id, "customers", limit=100)]


def test_files_uploaded_together_start_one_execution_after_the_quiet_time(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = triggered(stack, sample_workflow, debounce=30)
    job = workflow.job("customers")
    files = parts(3)
    for name, data, _ in files:
        note_uploads(stack.store, job, workflow.id, land(stack, workflow, name, data))
    pending = stack.store.pending_trigger(workflow.id, "customers")
    assert pending is not None and pending.files == 3 and pending.cause == "upload"
    # Due 30 s after the last upload, not the first.
    assert utcnow() + timedelta(seconds=29) < pending.due_at <= utcnow() + timedelta(seconds=30)
    assert fired(stack, workflow) == []  # still quiet time

    # Another process (the API after a restart) fires it: the state is in the store.
    other = Store.open(stack.settings)
    try:
        (started,) = fired(stack, workflow, other, now=pending.due_at)
    finally:
        other.close()
    execution = wait_for(stack, started.id)
    assert execution.status == "COMPLETED", execution.error
    assert execution.cause == "upload"
    assert execution.step("bronze").rows_in == sum(rows for _, _, rows in files)
    assert stack.store.pending_trigger(workflow.id, "customers") is None
    assert fired(stack, workflow, now=utcnow() + LATER) == []
    assert executions_of(stack.store, workflow) == [started.id]


def test_uploads_while_the_job_runs_give_one_follow_up(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = triggered(stack, sample_workflow, debounce=5)
    job = workflow.job("customers")
    # The job is running (as far as the store can tell: an execution that is PENDING).
    running = stack.store.create_execution(workflow.id, "customers", ["bronze"])
    for name, data, _ in parts(4)[:3]:
        note_uploads(stack.store, job, workflow.id, land(stack, workflow, name, data))
    assert fired(stack, workflow, now=utcnow() + LATER) == []
    pending = stack.store.pending_trigger(workflow.id, "customers")
    assert pending is not None and pending.waiting_for == running.id and pending.files == 3
    name, data, _ = parts(4)[3]  # one more while it waits: still one follow-up
    note_uploads(stack.store, job, workflow.id, land(stack, workflow, name, data))
    assert fired(stack, workflow, now=utcnow() + LATER) == []

    stack.store.finish_execution(running.id, ExecutionStatus.CANCELLED, error="held for the test")
    (follow_up,) = fired(stack, workflow, now=utcnow() + LATER)
    assert follow_up.cause == "follow-up"
    assert wait_for(stack, follow_up.id).status == "COMPLETED"
    assert fired(stack, workflow, now=utcnow() + LATER) == []
    assert executions_of(stack.store, workflow) == [follow_up.id, running.id]


def test_two_processes_firing_at_once_start_one_execution(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = triggered(stack, sample_workflow, debounce=0)
    name, data, _ = parts(1)[0]
    note_uploads(
        stack.store, workflow.job("customers"), workflow.id, land(stack, workflow, name, data)
    )
    stores = [Store.open(stack.settings) for _ in range(2)]
    barrier = threading.Barrier(2)
    started: list[list[str]] = []

    def fire(store: Store) -> None:
        barrier.wait()
        started.append([e.id for e in fired(stack, workflow, store)])

    threads = [threading.Thread(target=fire, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for store in stores:
        store.close()
    assert sorted(len(ids) for ids in started) == [0, 1]
    (execution_id,) = [i for ids in started for i in ids]
    assert wait_for(stack, execution_id).status == "COMPLETED"
    assert executions_of(stack.store, workflow) == [execution_id]


def test_the_scan_finds_direct_uploads_by_etag_and_skips_ingested_files(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = triggered(stack, sample_workflow, debounce=0)
    key = JobKey(workflow.id, "customers")
    landed = land(stack, workflow, "direct.csv", CUSTOMERS.read_bytes())
    found = [
        r for r in scan_landing(stack.settings, stack.store, stack.object_store) if r.job == key
    ]
    assert [r.new_files for r in found] == [list(landed)]
    assert not [
        r for r in scan_landing(stack.settings, stack.store, stack.object_store) if r.job == key
    ]
    (started,) = fired(stack, workflow)
    assert wait_for(stack, started.id).status == "COMPLETED"

    # The store's view lost (a new database): an ingested file starts nothing.
    stack.store.forget_landing(workflow.id, "customers", list(landed), utcnow() + LATER)
    assert not [
        r for r in scan_landing(stack.settings, stack.store, stack.object_store) if r.job == key
    ]
    assert stack.store.pending_trigger(workflow.id, "customers") is None
    # The same bytes put again: the same ETag, nothing new.
    assert land(stack, workflow, "direct.csv", CUSTOMERS.read_bytes()) == landed
    assert not [
        r for r in scan_landing(stack.settings, stack.store, stack.object_store) if r.job == key
    ]
    # The same name with other content: a new ETag, a new run.
    name, data, _ = parts(2)[0]
    relanded = land(stack, workflow, "direct.csv", data)
    assert relanded != landed
    found = [
        r for r in scan_landing(stack.settings, stack.store, stack.object_store) if r.job == key
    ]
    assert [r.new_files for r in found] == [list(relanded)]
    stack.store.drop_trigger(workflow.id, "customers")  # not run here


def test_a_scheduled_run_of_a_running_job_becomes_one_follow_up(
    stack: Stack, sample_workflow: Workflow
) -> None:
    workflow = triggered(stack, sample_workflow)
    running = stack.store.create_execution(workflow.id, "customers", ["bronze"])
    for _ in range(2):  # two schedule ticks while it runs
        result = stack.flow(workflow_id=workflow.id, job_id="customers", cause="schedule")
        assert result["status"] == "DEFERRED" and running.id in result["reason"]
    pending = stack.store.pending_trigger(workflow.id, "customers")
    assert pending is not None and pending.cause == "schedule" and pending.due_at <= utcnow()
    assert executions_of(stack.store, workflow) == [running.id]
    stack.store.finish_execution(running.id, ExecutionStatus.CANCELLED, error="held for the test")
    landed = land(stack, workflow, "customers.csv", CUSTOMERS.read_bytes())
    assert landed
    (follow_up,) = fired(stack, workflow)
    assert follow_up.cause == "follow-up"
    assert wait_for(stack, follow_up.id).status == "COMPLETED"
