"""Scoped API tokens through HTTP: FLOWFORGE_API_TOKEN and admin entries of
FLOWFORGE_API_TOKENS reach everything; a `read` token GETs its own workflow's routes only;
a `run` token also uploads to its landing and starts or cancels its executions. 401
without or with an unknown token, 403 naming the workflow and the scope needed; no answer
ever carries a token."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from flowforge.settings import ApiToken, Settings
from flowforge.storage import ObjectStore
from orchestrator.store import Store
from orchestrator.store.models import ExecutionStatus
from orchestrator.workflows import Workflow
from tests.api.conftest import api_alone
from tests.orchestrator.conftest import sample_workflow  # noqa: F401  (fixture)

ADMIN = "admin-token-" + uuid.uuid4().hex
ADMIN_TOO = "second-admin-" + uuid.uuid4().hex
READ = "read-token-" + uuid.uuid4().hex
RUN = "run-token-" + uuid.uuid4().hex
TOKENS = (ADMIN, ADMIN_TOO, READ, RUN)


class Setup:
    def __init__(self, url: str, store: Store, mine: str, other: str) -> None:
        self.url, self.store, self.mine, self.other = url, store, mine, other
        self.executions = {
            workflow: store.create_execution(workflow, "customers", ["bronze"]).id
            for workflow in (mine, other)
        }
        for execution in self.executions.values():
            store.finish_execution(execution, ExecutionStatus.FAILED, error="ended for the test")
        self.runs = {
            workflow: store.create_workflow_execution(workflow, ["orders"], ["bronze"]).id
            for workflow in (mine, other)
        }
        for run in self.runs.values():
            store.finish_workflow_execution(run, ExecutionStatus.FAILED, error="ended for the test")

    def call(self, token: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)
        for secret in TOKENS:
            assert secret not in response.text, (method, path)
        return response


@pytest.fixture(scope="module")
def setup(
    settings: Settings,
    store: ObjectStore,
    sample_workflow: Workflow,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Setup]:
    mine, other = (f"tok-{uuid.uuid4().hex[:8]}" for _ in range(2))
    scoped = [
        ApiToken(token=SecretStr(ADMIN_TOO), scope="admin"),
        ApiToken(token=SecretStr(READ), scope="read", workflow=mine),
        ApiToken(token=SecretStr(RUN), scope="run", workflow=mine),
    ]
    folder: Path = tmp_path_factory.mktemp("tokens")
    with api_alone(settings, store, folder, api_token=SecretStr(ADMIN), api_tokens=scoped) as (
        url,
        database,
    ):
        for workflow_id in (mine, other):
            database.save_workflow(sample_workflow.model_copy(update={"id": workflow_id}))
        yield Setup(url, database, mine, other)


def upload(setup: Setup, token: str, workflow: str) -> httpx.Response:
    files = {"files": ("scoped.csv", b"customer_id\n1\n", "text/csv")}
    return setup.call(token, "POST", f"/api/workflows/{workflow}/jobs/customers/files", files=files)


def test_without_a_token_or_with_an_unknown_one_every_route_is_401(setup: Setup) -> None:
    for token in (None, "not-a-token-" + uuid.uuid4().hex):
        for path in ("/api/workflows", f"/api/workflows/{setup.mine}"):
            response = setup.call(token, "GET", path)
            assert response.status_code == 401, (token, path)
            assert response.json()["error"]["code"] == "UNAUTHENTICATED"


def test_admin_tokens_reach_everything(setup: Setup) -> None:
    for token in (ADMIN, ADMIN_TOO):
        listed = {w["id"] for w in setup.call(token, "GET", "/api/workflows").json()}
        assert {setup.mine, setup.other} <= listed
        for workflow in (setup.mine, setup.other):
            assert setup.call(token, "GET", f"/api/workflows/{workflow}").status_code == 200
            assert upload(setup, token, workflow).status_code == 201


def test_a_read_token_reads_its_workflow_only(setup: Setup) -> None:
    mine, other = setup.mine, setup.other
    for path in (
        f"/api/workflows/{mine}",
        f"/api/workflows/{mine}/jobs/customers",
        f"/api/workflows/{mine}/jobs/customers/files",
        f"/api/executions/{setup.executions[mine]}",
        f"/api/executions/{setup.executions[mine]}/logs",
        f"/api/executions?workflow_id={mine}",
        f"/api/workflows/{mine}/executions",
        f"/api/workflow-executions/{setup.runs[mine]}",
    ):
        assert setup.call(READ, "GET", path).status_code == 200, path
    execution = setup.call(READ, "GET", f"/api/executions?workflow_id={mine}").json()
    assert {e["workflow_id"] for e in execution["items"]} == {mine}
    table = setup.call(READ, "GET", f"/api/tables/silver/{mine}/customers")
    assert table.status_code != 403, table.text  # allowed; the table is not there yet

    for path in (
        f"/api/workflows/{other}",
        f"/api/executions/{setup.executions[other]}",
        f"/api/executions/{setup.executions[other]}/logs",
        f"/api/executions?workflow_id={other}",
        f"/api/tables/silver/{other}/customers",
        f"/api/workflows/{other}/executions",
        f"/api/workflow-executions/{setup.runs[other]}",
    ):
        response = setup.call(READ, "GET", path)
        assert response.status_code == 403, path
        error = response.json()["error"]
        assert error["code"] == "PERMISSION_DENIED"
        assert f"needs read on workflow {other!r}" in error["message"], error
        assert f"read on workflow {mine!r}" in error["message"]


def test_a_read_token_cannot_change_anything(setup: Setup) -> None:
    mine = setup.mine
    refused = {
        "upload": upload(setup, READ, mine),
        "cancel": setup.call(READ, "POST", f"/api/executions/{setup.executions[mine]}/cancel"),
        "run": setup.call(READ, "POST", f"/api/workflows/{mine}/jobs/customers/executions"),
        "run workflow": setup.call(READ, "POST", f"/api/workflows/{mine}/executions"),
        "cancel workflow run": setup.call(
            READ, "POST", f"/api/workflow-executions/{setup.runs[mine]}/cancel"
        ),
    }
    for what, response in refused.items():
        assert response.status_code == 403, what
        assert f"needs run on workflow {mine!r}" in response.json()["error"]["message"], what
    deleted = setup.call(READ, "DELETE", f"/api/workflows/{mine}")
    assert deleted.status_code == 403
    assert "needs an admin token" in deleted.json()["error"]["message"]
    assert setup.store.get_workflow(mine).id == mine  # still there


def test_a_run_token_uploads_and_cancels_in_its_workflow_only(setup: Setup) -> None:
    mine, other = setup.mine, setup.other
    assert upload(setup, RUN, mine).status_code == 201
    cancel = setup.call(RUN, "POST", f"/api/executions/{setup.executions[mine]}/cancel")
    assert cancel.status_code == 409, cancel.text  # allowed, and the execution had ended
    assert "FAILED" in cancel.json()["error"]["message"]
    assert setup.call(RUN, "GET", f"/api/workflows/{mine}").status_code == 200
    ended = setup.call(RUN, "POST", f"/api/workflow-executions/{setup.runs[mine]}/cancel")
    assert ended.status_code == 409 and "FAILED" in ended.json()["error"]["message"]
    refused = setup.call(RUN, "POST", f"/api/workflow-executions/{setup.runs[other]}/cancel")
    assert refused.status_code == 403

    response = upload(setup, RUN, other)
    assert response.status_code == 403
    assert f"needs run on workflow {other!r}" in response.json()["error"]["message"]
    cancel = setup.call(RUN, "POST", f"/api/executions/{setup.executions[other]}/cancel")
    assert cancel.status_code == 403


def test_routes_over_every_workflow_and_definitions_need_an_admin(setup: Setup) -> None:
    for token in (READ, RUN):
        for method, path in (
            ("GET", "/api/workflows"),
            ("GET", "/api/jobs"),
            ("GET", "/api/executions"),
            ("GET", "/api/tables"),
            ("GET", "/api/dimensions"),
            ("POST", "/api/workflows"),
            ("DELETE", f"/api/workflows/{setup.mine}"),
            ("PUT", "/api/dimensions/countries"),
        ):
            response = setup.call(token, method, path)
            assert response.status_code == 403, (token, method, path)
            assert "needs an admin token" in response.json()["error"]["message"]
