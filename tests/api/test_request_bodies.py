"""Request bodies that would tie the API up: too large (refused before they are read whole),
too slow (dropped), too costly to parse (refused, and parsed off the event loop). Real
sockets against the API alone (SQLite, the session's SeaweedFS)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.api.workflows import MAX_YAML_BYTES
from orchestrator.store import Store
from orchestrator.workflows import parse_workflow
from orchestrator.yamlsource import MAX_VALUES
from tests.api import rawhttp
from tests.api.test_errors import error_of

BODY_TIMEOUT = 3.0
BOUNDARY = "flowforge-test-boundary"


@pytest.fixture(scope="module")
def served(
    settings: Settings, store: ObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Store]]:
    from tests.api.conftest import api_alone

    folder = tmp_path_factory.mktemp("api-bodies")
    with api_alone(
        settings, store, folder, api_body_timeout_seconds=BODY_TIMEOUT, api_upload_max_mb=64
    ) as running:
        yield running


@pytest.fixture
def url(served: tuple[str, Store]) -> str:
    return served[0]


def workflow_with(values: int, marker: str = "") -> str:
    """A workflow document whose one job lists `values` null markers: a known field, so the
    document is refused for its size alone."""
    markers = ", ".join(f"n{i}" for i in range(values))
    return f"id: big-{marker or 'doc'}\njobs:\n  - id: a\n    csv: {{null_markers: [{markers}]}}\n"


def test_an_announced_body_over_the_limit_is_refused_before_it_is_sent(url: str) -> None:
    """1 GB announced, nothing sent: the answer comes at once, from Content-Length alone
    (before, the API read the whole body first: a 1 GB one took it to 2.2 GB)."""
    headers = {"Content-Type": "application/yaml", "Content-Length": str(1 << 30)}
    with rawhttp.connect(url, "POST", "/api/workflows", headers) as sock:
        reply = rawhttp.answer(sock, timeout=30)
    assert reply.status == 413, reply.body[:300]
    assert f"larger than {MAX_YAML_BYTES} bytes" in json.loads(reply.body)["error"]["message"]


def test_a_streamed_body_over_the_limit_is_refused_while_it_arrives(url: str) -> None:
    """Chunked (no Content-Length): refused once the limit is passed, while the client is
    still sending; the API never holds more than the limit."""
    most = 64 << 20
    headers = {"Content-Type": "application/yaml", "Transfer-Encoding": "chunked"}
    with rawhttp.connect(url, "POST", "/api/workflows", headers) as sock:
        sent = rawhttp.send_until_answered(sock, b"# a comment line\n" * 4096, most)
        if not rawhttp.answered(sock):
            sock.sendall(b"0\r\n\r\n")  # the body ends: whatever the API says, it says now
        reply = rawhttp.answer(sock, timeout=30)
    assert reply.status == 413, reply.body[:300]
    assert sent < most, "the API read the whole body before answering"
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_a_document_of_too_many_values_is_refused_naming_the_limit(url: str) -> None:
    """The issue's document: 99,000 values in under 1 MB. Refused at value 20,001, not
    parsed six times (27 s, /healthz waiting 26.8 s)."""
    text = workflow_with(99_000)
    assert len(text.encode()) < MAX_YAML_BYTES
    response = httpx.post(f"{url}/api/workflows", content=text, timeout=60)
    assert response.status_code == 422, response.text[:300]
    message = error_of(response, 422)
    assert f"more than {MAX_VALUES} values" in message
    assert message.startswith("workflow.yaml")
    # Under the limit, the same shape is a workflow.
    fits = workflow_with(MAX_VALUES // 2, marker=uuid.uuid4().hex[:8])
    applied = httpx.post(f"{url}/api/workflows", content=fits, timeout=60)
    assert applied.status_code == 200, applied.text[:300]
    assert applied.json()["jobs"][0]["csv"]["null_markers"][-1] == f"n{MAX_VALUES // 2 - 1}"


def test_healthz_answers_while_a_document_is_parsed(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parse of one document is held (PyYAML's composer, reaching the document's id,
    waits on the test) until /healthz has answered: on the event loop, /healthz could not
    answer before it."""
    marker = f"held-{uuid.uuid4().hex[:8]}"
    parsing, release = threading.Event(), threading.Event()
    compose_scalar_node = yaml.composer.Composer.compose_scalar_node

    def held(composer: yaml.composer.Composer, anchor: str | None) -> yaml.ScalarNode:
        node = compose_scalar_node(composer, anchor)
        if marker in str(node.value):
            parsing.set()
            release.wait(60)
        return node  # type: ignore[no-any-return]

    monkeypatch.setattr(yaml.composer.Composer, "compose_scalar_node", held)
    text = workflow_with(1000, marker=marker)
    try:
        with ThreadPoolExecutor(1) as pool:
            posted = pool.submit(httpx.post, f"{url}/api/workflows", content=text, timeout=90)
            assert parsing.wait(30), "the document was not parsed"
            health = httpx.get(f"{url}/healthz", timeout=10)  # answered, or ReadTimeout
            assert health.status_code == 200
            assert not posted.done()  # the parse is still held: /healthz came first
            release.set()
            assert posted.result(60).status_code == 200
    finally:
        release.set()


def test_a_workflow_body_that_stops_arriving_is_dropped(url: str) -> None:
    headers = {"Content-Type": "application/yaml", "Content-Length": "1000"}
    with rawhttp.connect(url, "POST", "/api/workflows", headers, b"id: slow\n") as sock:
        reply = rawhttp.answer(sock, timeout=30)
    assert reply.status == 408, reply.body[:300]
    message = json.loads(reply.body)["error"]["message"]
    assert "FLOWFORGE_API_BODY_TIMEOUT_SECONDS" in message


def open_uploads(store: ObjectStore, key: str) -> list[str]:
    found = store._client.list_multipart_uploads(Bucket=store.bucket, Prefix=key)
    return [u["UploadId"] for u in found.get("Uploads", []) if u["Key"] == key]


def wait_for(condition: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"still not {what} after {timeout}s"
        time.sleep(0.1)


def file_part(name: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()


def test_an_upload_that_stops_arriving_is_dropped_and_its_parts_aborted(
    served: tuple[str, Store], store: ObjectStore
) -> None:
    """9 MB of a CSV sent (the store has begun a multipart upload), then nothing: the
    request is answered 408, the multipart upload aborted, nothing lands. Before, the
    request (and its writer thread) waited for ever."""
    url, database = served
    workflow = f"slow-{uuid.uuid4().hex[:8]}"
    database.save_workflow(parse_workflow(f"id: {workflow}\njobs:\n  - id: job\n"))
    key = f"landing/{workflow}/job/slow.csv"
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(20 << 20),
    }
    csv = b"id,name\n" + b"1,a\n" * ((9 << 20) // 4)
    path = f"/api/workflows/{workflow}/jobs/job/files"
    with rawhttp.connect(url, "POST", path, headers, file_part("slow.csv") + csv) as sock:
        wait_for(lambda: open_uploads(store, key) != [], "begun")  # parts are stored
        reply = rawhttp.answer(sock, timeout=60)
    assert reply.status == 408, reply.body[:300]
    wait_for(lambda: open_uploads(store, key) == [], "aborted")
    assert store.head(key) is None
    assert httpx.get(f"{url}/healthz").status_code == 200
