"""Bad requests get the documented JSON errors, name what is wrong and change nothing."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from orchestrator.store import ExecutionStatus
from orchestrator.workflows import Workflow
from tests.api.conftest import UPLOAD_MAX_MB, Api, applied


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    assert body["error"]["code"] and body["error"]["message"]
    return str(body["error"]["message"])


@pytest.fixture(scope="module")
def workflow(api: Api, sample_workflow: Workflow) -> Workflow:
    return applied(api, sample_workflow)


def landed(api: Api, workflow: Workflow, job: str = "customers") -> list[str]:
    return [o.key for o in api.stack.object_store.list(f"landing/{workflow.id}/{job}/")]


def upload(api: Api, workflow: Workflow, *files: tuple[str, bytes]) -> httpx.Response:
    return api.client.post(
        f"/api/workflows/{workflow.id}/jobs/customers/files",
        files=[("files", (name, data, "text/csv")) for name, data in files],
    )


def test_uploads_refused_name_the_file_and_leave_nothing(api: Api, workflow: Workflow) -> None:
    good = ("good.csv", b"a,b\n1,2\n")
    big = b"a,b\n" + b"1,2\n" * ((UPLOAD_MAX_MB << 20) // 4 + 10)
    message = error_of(upload(api, workflow, good, ("big.csv", big)), 413)
    assert "'big.csv'" in message and f"{UPLOAD_MAX_MB} MB" in message
    assert "'notes.txt'" in error_of(upload(api, workflow, ("notes.txt", b"a\n")), 415)
    binary = b"PK\x03\x04\x14\x00\x00\x00" + bytes(range(256)) * 4
    assert "'sheet.csv' is binary" in error_of(upload(api, workflow, ("sheet.csv", binary)), 415)
    assert "'../x.csv'" in error_of(upload(api, workflow, ("../x.csv", b"a\n")), 400)
    twice = error_of(upload(api, workflow, good, good), 400)
    assert "'good.csv' is in the request twice" in twice
    assert landed(api, workflow) == []  # good.csv was written, then removed with the request

    not_multipart = api.client.post(
        f"/api/workflows/{workflow.id}/jobs/customers/files", content=b"a,b\n1,2\n"
    )
    error_of(not_multipart, 415)
    csv = [("files", ("good.csv", b"a,b\n1,2\n", "text/csv"))]
    unknown_job = api.client.post(f"/api/workflows/{workflow.id}/jobs/nope/files", files=csv)
    assert "'nope'" in error_of(unknown_job, 404)
    unknown_workflow = api.client.post("/api/workflows/no-such-workflow/jobs/customers/files",
                                       files=csv)  # fmt: skip
    assert "'no-such-workflow'" in error_of(unknown_workflow, 404)
    assert landed(api, workflow, "nope") == []
    assert list(api.stack.object_store.list("landing/no-such-workflow/")) == []
    assert api.client.get("/healthz").status_code == 200  # still serving


def test_several_files_in_one_upload(api: Api, workflow: Workflow) -> None:
    response = upload(api, workflow, ("one.csv", b"a\n1\n"), ("two.csv", b"a\n2\n"))
    assert response.status_code == 201, response.text
    assert [f["name"] for f in response.json()["files"]] == ["one.csv", "two.csv"]
    assert sorted(landed(api, workflow)) == [
        f"landing/{workflow.id}/customers/one.csv",
        f"landing/{workflow.id}/customers/two.csv",
    ]
    api.stack.object_store.delete_prefix(f"landing/{workflow.id}/")


def test_unknown_and_invalid_ids(api: Api, workflow: Workflow) -> None:
    assert "'nope'" in error_of(api.client.get("/api/workflows/nope"), 404)
    assert "'bad id!'" in error_of(api.client.get("/api/workflows/bad id!"), 400)
    error_of(api.client.get("/api/executions/20990101T000000Z-00000000"), 404)
    error_of(api.client.get("/api/executions/..%2F..%2Fetc"), 404)  # decoded: no such route
    error_of(api.client.get("/api/executions/%2e%2e"), 400)
    error_of(api.client.get("/api/executions/x/logs"), 404)
    unknown_job = api.client.post(f"/api/workflows/{workflow.id}/jobs/nope/executions", json={})
    assert "'nope'" in error_of(unknown_job, 404)
    bad_layer = api.client.post(
        f"/api/workflows/{workflow.id}/jobs/customers/executions", json={"from_layer": "platinum"}
    )
    assert "from_layer" in error_of(bad_layer, 422)
    error_of(api.client.get("/api/executions", params={"status": "DONE"}), 422)
    error_of(api.client.get("/api/executions", params={"workflow_id": "a/b"}), 400)
    error_of(api.client.get("/api/no-such-endpoint"), 404)


def test_workflow_definitions_are_validated_like_the_cli(api: Api) -> None:
    def apply(text: str) -> httpx.Response:
        return api.client.post("/api/workflows", content=text.encode())

    bad = "id: wf\njobs:\n  - id: a\n    silver: {columns: [{source: x, type: nope}]}\n"
    message = error_of(apply(bad), 422)
    assert "workflow.yaml:4: jobs[0].silver.columns[0].type 'nope' is not a type" in message
    with_file = (
        "id: wf\njobs:\n  - id: a\n    gold:\n      models:\n"
        "        - {name: m, sql_file: /etc/passwd}\n"
    )
    assert "workflow.yaml:6: jobs[0].gold.models[0].sql_file" in error_of(apply(with_file), 422)
    # The workflow's own gold: the same file rule, and its models checked against its jobs.
    own = "id: wf\njobs:\n  - id: a\ngold:\n  models:\n"
    own_file = own + "    - {name: m, sql_file: /etc/passwd}\n"
    assert "workflow.yaml:6: gold.models[0].sql_file is not accepted" in error_of(
        apply(own_file), 422
    )
    unknown = own + "    - name: m\n      sql: |\n        SELECT *\n        FROM silver.b\n"
    assert error_of(apply(unknown), 422) == (
        "workflow.yaml:7: gold.models[0].sql: line 2: silver.b is not a job of workflow 'wf' "
        "(jobs: a)"
    )
    assert "not valid YAML" in error_of(apply("id: [unclosed\n"), 422)


def test_the_token_is_enforced(api: Api) -> None:
    bare = httpx.Client(base_url=api.url, timeout=10)
    assert bare.get("/healthz").status_code == 200
    error_of(bare.get("/api/jobs"), 401)
    error_of(bare.get("/api/jobs", headers={"Authorization": "Bearer wrong"}), 401)
    error_of(bare.get("/api/jobs", headers={"Authorization": "Basic abc"}), 401)
    error_of(bare.post("/api/workflows", content=b"id: x\n"), 401)
    assert bare.get("/api/jobs", headers=dict(api.client.headers)).status_code == 200
    token = api.client.headers["Authorization"].split(" ", 1)[1]
    events = bare.get("/api/events", params={"once": True, "access_token": token})
    assert events.status_code == 200
    error_of(bare.get("/api/jobs", params={"access_token": token}), 401)  # events only
    assert bare.get("/").status_code == 200  # the UI's files are public; its data is not
    error_of(bare.get("/openapi.json"), 401)  # the OpenAPI document needs the token too
    assert token not in api.client.get("/openapi.json").text


def test_every_operation_needs_the_token(api: Api) -> None:
    """Each operation of the OpenAPI document without the token, with a wrong one and with
    the token but not as 'Bearer': 401 before anything else (IDs are placeholders: a request
    that got past the token check would answer 404, 400 or 200 instead)."""
    document = api.client.get("/openapi.json").json()
    operations = [
        (method.upper(), re.sub(r"\{[^}]+\}", "placeholder", path))
        for path, item in document["paths"].items()
        for method in item
        if path != "/healthz"
    ]
    assert len(operations) >= 16 and ("GET", "/api/events") in operations
    token = api.client.headers["Authorization"].split(" ", 1)[1]
    with httpx.Client(base_url=api.url, timeout=10) as bare:
        for method, path in operations:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
                response = bare.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers, response.text)
                assert response.json()["error"]["code"] == "UNAUTHENTICATED"
                assert response.headers["WWW-Authenticate"] == "Bearer"
        # The stream's ?access_token= is checked like the header.
        wrong = bare.get("/api/events", params={"once": True, "access_token": "wrong"})
        assert wrong.status_code == 401, wrong.text
        assert bare.get("/healthz").status_code == 200


def test_a_second_trigger_names_the_running_execution_and_cancel(
    api: Api, workflow: Workflow
) -> None:
    api.stack.object_store.put_bytes(
        f"landing/{workflow.id}/orders/orders.csv", b"order_id\n1\n", content_type="text/csv"
    )
    path = f"/api/workflows/{workflow.id}/jobs/orders/executions"
    first = api.client.post(path, json={"full_refresh": True})
    assert first.status_code == 201, first.text
    execution_id = first.json()["id"]
    message = error_of(api.client.post(path, json={}), 409)
    assert f"already has execution '{execution_id}'" in message

    cancelled = api.client.post(f"/api/executions/{execution_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    again = error_of(api.client.post(f"/api/executions/{execution_id}/cancel"), 409)
    assert "ended CANCELLED" in again
    assert api.client.get(f"/api/executions/{execution_id}").json()["status"] == "CANCELLED"


def test_events_for_something_unknown_are_404_before_any_stream(
    api: Api, workflow: Workflow
) -> None:
    unknown = {"execution_id": "no-such-run", "once": True}
    assert "'no-such-run'" in error_of(api.client.get("/api/events", params=unknown), 404)
    missing_workflow = {"workflow_id": "no-such-workflow", "once": True}
    assert "no-such-workflow" in error_of(
        api.client.get("/api/events", params=missing_workflow), 404
    )
    missing_job = {"workflow_id": workflow.id, "job_id": "no-such-job", "once": True}
    assert "no-such-job" in error_of(api.client.get("/api/events", params=missing_job), 404)
    error_of(api.client.get("/api/events", params={"execution_id": "../x", "once": True}), 400)
    known = api.client.get("/api/events", params={"workflow_id": workflow.id, "once": True})
    assert known.status_code == 200
    assert known.headers["content-type"].startswith("text/event-stream")


@pytest.fixture
def running(api: Api, workflow: Workflow) -> Iterator[str]:
    """A RUNNING execution of the workflow's products job with no flow behind it: the test
    ends it as the flow would."""
    store = api.stack.store
    execution = store.create_execution(workflow.id, "products", ["bronze", "silver", "gold"])
    store.start_execution(execution.id)
    yield execution.id
    store.finish_execution(execution.id, ExecutionStatus.FAILED, error="test over")


def test_a_cancel_the_run_ended_just_before_is_409(
    api: Api, running: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run ends on its own after the API read it as running, just before the cancel is
    written: the answer is 409 naming how it ended, not 200 with a finished execution, and
    the execution stays COMPLETED."""
    store = api.stack.store
    finish = store.finish_execution

    def flow_ends_first(execution_id: str, status: ExecutionStatus, **kwargs: Any) -> bool:
        if execution_id == running and status == ExecutionStatus.CANCELLED:
            finish(running, ExecutionStatus.COMPLETED)  # the flow's own end, a moment earlier
        return finish(execution_id, status, **kwargs)

    monkeypatch.setattr(store, "finish_execution", flow_ends_first)
    response = api.client.post(f"/api/executions/{running}/cancel")
    monkeypatch.undo()
    message = error_of(response, 409)
    assert f"execution {running!r} is not running: it ended COMPLETED" in message
    shown = api.client.get(f"/api/executions/{running}").json()
    assert (shown["status"], shown["error"]) == ("COMPLETED", None)


def wait_for_a_blocked_update(engine: Any, timeout: float = 30) -> None:
    """Until PostgreSQL shows an UPDATE of executions waiting for a lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query ILIKE 'UPDATE executions%'"
    )
    deadline = time.monotonic() + timeout
    while True:
        # A new connection each round: statistics views are a snapshot per transaction.
        with engine.connect() as connection:
            if connection.execute(query).scalar():
                return
        assert time.monotonic() < deadline, "the cancel never waited for the flow's lock"
        time.sleep(0.05)


def test_a_cancel_racing_the_runs_end_in_the_database_is_409(api: Api, running: str) -> None:
    """The flow's end is in flight (its transaction open, paused just after its first
    statement on the execution) when the cancel arrives: one of them wins, the other hears
    so. Here the flow came first, so the cancel is 409 and the execution COMPLETED."""
    store = api.stack.store
    paused, resume = threading.Event(), threading.Event()
    flow_thread: list[int] = []

    def pause(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        mine = flow_thread == [threading.get_ident()]
        if mine and "executions" in statement and not paused.is_set():
            paused.set()
            resume.wait(30)

    def flow_ends() -> bool:
        flow_thread.append(threading.get_ident())
        return store.finish_execution(running, ExecutionStatus.COMPLETED)

    event.listen(store.engine, "after_cursor_execute", pause)
    try:
        with ThreadPoolExecutor(2) as pool:
            flow = pool.submit(flow_ends)
            assert paused.wait(30), "the flow's end did not reach the database"
            cancel = pool.submit(api.client.post, f"/api/executions/{running}/cancel")
            # The race is on only once the cancel's UPDATE waits for the flow's row lock.
            wait_for_a_blocked_update(store.engine)
            resume.set()
            assert flow.result(30) is True
            message = error_of(cancel.result(30), 409)
    finally:
        resume.set()
        event.remove(store.engine, "after_cursor_execute", pause)
    assert "it ended COMPLETED" in message
    assert api.client.get(f"/api/executions/{running}").json()["status"] == "COMPLETED"
