"""Three executions of one workflow, run through the deployment: watched live over SSE from
before they start, then found again through the list's filters and pages, and each one's
Prefect logs read page by page."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from orchestrator.workflows import Workflow
from tests.api.conftest import Api, wait_until_ended
from tests.sample_oracle import EXPECTED

JOBS = ("customers", "orders", "products")  # triggered in this order
ENDED = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
STEP_ENDED = {"COMPLETED", "FAILED", "SKIPPED"}
LAYERS = ("bronze", "silver", "gold")


@dataclass
class Event:
    name: str
    id: int
    data: dict[str, Any]


@dataclass
class Runs:
    workflow: Workflow
    ids: dict[str, str]  # job -> execution id
    executions: dict[str, dict[str, Any]]  # job -> the ended execution
    events: list[Event]  # what the stream sent, in order


def read_events(lines: Iterator[str], until: Any, timeout: float) -> list[Event]:
    """SSE blocks parsed from `lines` until `until(events)` holds (or the time is up)."""
    events: list[Event] = []
    block: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    for line in lines:
        if line:
            field, _, value = line.partition(":")
            block[field] = value.removeprefix(" ")
            continue
        if "event" in block:
            events.append(Event(block["event"], int(block["id"]), json.loads(block["data"])))
            if until(events):
                return events
        block = {}
        assert time.monotonic() < deadline, f"the stream did not finish: {events[-3:]}"
    raise AssertionError(f"the stream ended early: {events[-3:]}")


@pytest.fixture(scope="module")
def runs(api: Api, sample_workflow: Workflow) -> Runs:
    """customers and orders with their sample CSVs landed; products with nothing landed,
    so it fails in bronze. The stream is open before the first trigger."""
    workflow = api.stack.add_workflow(sample_workflow)
    api.stack.object_store.delete_prefix(f"landing/{workflow.id}/products/")
    ids: dict[str, str] = {}

    def all_ended(events: list[Event]) -> bool:
        """Every execution ended and its steps' last events sent (they follow the
        execution's own event of the same round)."""
        ended = {
            e.data["id"] for e in events if e.name == "execution" and e.data["status"] in ENDED
        }
        last_step = {
            (e.data["execution_id"], e.data["layer"]): e.data["status"]
            for e in events
            if e.name == "step"
        }
        return (
            len(ids) == len(JOBS)
            and ended >= set(ids.values())
            and all(
                last_step.get((i, layer)) in STEP_ENDED for i in ids.values() for layer in LAYERS
            )
        )

    timeout = httpx.Timeout(30, read=40)  # a keep-alive comment comes every 15 s at worst
    params = {"workflow_id": workflow.id}
    with api.client.stream("GET", "/api/events", params=params, timeout=timeout) as stream:
        assert stream.status_code == 200
        for job in JOBS:
            started = api.client.post(f"/api/workflows/{workflow.id}/jobs/{job}/executions")
            assert started.status_code == 201, started.text
            ids[job] = started.json()["id"]
        events = read_events(stream.iter_lines(), all_ended, timeout=180)
    executions = {job: wait_until_ended(api, ids[job]) for job in JOBS}
    return Runs(workflow, ids, executions, events)


def test_the_stream_sends_each_step_and_execution_as_it_changes(runs: Runs) -> None:
    # `id:` counts the execution events; its step events carry the same id.
    counter = [e.id for e in runs.events if e.name == "execution"]
    assert counter == list(range(1, len(counter) + 1))
    assert [e.id for e in runs.events] == sorted(e.id for e in runs.events)
    statuses: dict[str, list[str]] = defaultdict(list)
    steps: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for event in runs.events:
        if event.name == "execution":
            statuses[event.data["id"]].append(event.data["status"])
        else:
            assert event.name == "step", event
            steps[(event.data["execution_id"], event.data["layer"])].append(event.data)
    assert set(statuses) == set(runs.ids.values())  # nothing of other workflows

    for job in ("customers", "orders"):
        execution_id = runs.ids[job]
        # Seen live: first while still going (the stream opened before the trigger).
        assert statuses[execution_id][0] in ("PENDING", "RUNNING"), statuses[execution_id]
        assert statuses[execution_id][-1] == "COMPLETED", runs.executions[job]["error"]
        for layer, (rows_in, rows_out, rejected) in EXPECTED[job].items():
            last = steps[(execution_id, layer)][-1]
            assert last["status"] == "COMPLETED", (job, layer, steps[(execution_id, layer)])
            assert (last["rows_in"], last["rows_out"], last["rows_rejected"]) == (
                rows_in,
                rows_out,
                rejected,
            )
        # Bronze's end is sent while the execution is still going, not with its end.
        order = [(e.name, e.data.get("layer"), e.data["status"]) for e in runs.events
                 if execution_id in (e.data.get("id"), e.data.get("execution_id"))]  # fmt: skip
        assert order.index(("step", "bronze", "COMPLETED")) < order.index(
            ("execution", None, "COMPLETED")
        ), order

    failed = runs.ids["products"]
    assert statuses[failed][-1] == "FAILED"
    assert [steps[(failed, layer)][-1]["status"] for layer in LAYERS] == [
        "FAILED",
        "SKIPPED",
        "SKIPPED",
    ]
    assert "no CSV objects" in steps[(failed, "bronze")][-1]["error"]


def page(api: Api, **params: Any) -> dict[str, Any]:
    response = api.client.get("/api/executions", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def ids_of(listed: dict[str, Any]) -> list[str]:
    return [e["id"] for e in listed["items"]]


def test_the_list_filters_and_pages(api: Api, runs: Runs) -> None:
    workflow_id = runs.workflow.id
    customers, orders, products = (runs.ids[job] for job in JOBS)
    everything = page(api, workflow_id=workflow_id)
    assert ids_of(everything) == [products, orders, customers]  # newest first
    assert everything["total"] == 3

    assert ids_of(page(api, workflow_id=workflow_id, job_id="orders")) == [orders]
    across_workflows = page(api, job_id="orders", limit=200)
    assert orders in ids_of(across_workflows)
    assert {e["job_id"] for e in across_workflows["items"]} == {"orders"}

    completed = page(api, workflow_id=workflow_id, status="COMPLETED")
    assert (ids_of(completed), completed["total"]) == ([orders, customers], 2)
    failed = page(api, workflow_id=workflow_id, status="FAILED")
    assert (ids_of(failed), failed["total"]) == ([products], 1)
    running = page(api, workflow_id=workflow_id, status="RUNNING")
    assert (running["items"], running["total"]) == ([], 0)

    first = page(api, workflow_id=workflow_id, limit=2, offset=0)
    second = page(api, workflow_id=workflow_id, limit=2, offset=2)
    beyond = page(api, workflow_id=workflow_id, limit=2, offset=4)
    assert (ids_of(first), first["total"], first["limit"], first["offset"]) == (
        [products, orders],
        3,
        2,
        0,
    )
    assert (ids_of(second), second["total"], second["offset"]) == ([customers], 3, 2)
    assert (beyond["items"], beyond["total"]) == ([], 3)
    second_completed = page(api, workflow_id=workflow_id, status="COMPLETED", limit=1, offset=1)
    assert (ids_of(second_completed), second_completed["total"]) == ([customers], 2)


def all_logs(api: Api, execution_id: str) -> list[dict[str, Any]]:
    """Every log line of the execution, once the API says they have all reached Prefect
    (they are shipped in batches and may trail the run by a few seconds)."""
    deadline = time.monotonic() + 60
    while True:
        response = api.client.get(f"/api/executions/{execution_id}/logs", params={"limit": 200})
        assert response.status_code == 200, response.text
        lines: list[dict[str, Any]] = response.json()["items"]
        if response.json()["complete"]:
            assert any(f"execution {execution_id} completed" in line["message"] for line in lines)
            return lines
        assert time.monotonic() < deadline, f"logs not complete yet: {lines[-3:]}"
        time.sleep(0.5)


def shown(lines: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(line["timestamp"], line["message"]) for line in lines]


def test_logs_come_a_page_at_a_time_and_only_the_executions_own(api: Api, runs: Runs) -> None:
    customers, orders = runs.ids["customers"], runs.ids["orders"]
    everything = all_logs(api, customers)
    assert len(everything) > 4
    path = f"/api/executions/{customers}/logs"
    first = api.client.get(path, params={"limit": 2, "offset": 0}).json()
    second = api.client.get(path, params={"limit": 2, "offset": 2}).json()
    assert (first["limit"], first["offset"], second["offset"]) == (2, 0, 2)
    assert len(first["items"]) == len(second["items"]) == 2
    assert not set(shown(first["items"])) & set(shown(second["items"]))
    stamps = [line["timestamp"] for line in first["items"] + second["items"]]
    assert stamps == sorted(stamps)
    assert shown(first["items"] + second["items"]) == shown(everything[:4])

    # The other execution's lines (same workflow, same time) never show up here.
    theirs = all_logs(api, orders)
    flow_runs = {runs.executions[job]["flow_run_id"] for job in ("customers", "orders")}
    assert len(flow_runs) == 2
    assert {line["flow_run_id"] for line in everything} == {
        runs.executions["customers"]["flow_run_id"]
    }
    assert not any(f"{runs.workflow.id}/orders" in line["message"] for line in everything)
    assert any(f"{runs.workflow.id}/orders" in line["message"] for line in theirs)
    assert not set(shown(theirs)) & set(shown(everything))
