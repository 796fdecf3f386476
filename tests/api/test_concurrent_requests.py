"""Many requests at once: uploads in flight together all land, and the API keeps answering
while they stream."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from orchestrator.workflows import Workflow
from tests.api.conftest import TOKEN, Api, applied

BOUNDARY = "flowforge-test-boundary"


@pytest.fixture(scope="module")
def workflow(api: Api, sample_workflow: Workflow) -> Workflow:
    return applied(api, sample_workflow)


def slow_body(name: str, csv: bytes, started: threading.Barrier) -> Iterator[bytes]:
    """A multipart body sent in two halves: the second only once every upload has sent its
    first, so that all of them are open on the server at the same time."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode() + csv[: len(csv) // 2]
    started.wait(30)
    time.sleep(0.5)  # the server has read the first halves
    yield csv[len(csv) // 2 :] + f"\r\n--{BOUNDARY}--\r\n".encode()


def test_more_uploads_at_once_than_the_servers_default_threads(
    api: Api, workflow: Workflow
) -> None:
    """More uploads in flight than asyncio's default thread pool has threads (cores + 4):
    each is written to S3 by a thread that waits for the request's bytes, so a pool that
    held those writers could not also pass them the bytes, and every request would hang."""
    uploads = min(32, (os.cpu_count() or 1) + 4) + 3
    started = threading.Barrier(uploads)
    url = f"{api.url}/api/workflows/{workflow.id}/jobs/customers/files"
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
    }

    def upload(index: int) -> httpx.Response:
        csv = f"id,name\n{index},customer {index}\n".encode() * 200
        body = slow_body(f"part-{index:02d}.csv", csv, started)
        return httpx.post(url, content=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(uploads) as pool:
        futures = [pool.submit(upload, i) for i in range(uploads)]
        time.sleep(1)  # the uploads are open and waiting for their second halves
        assert api.client.get("/healthz", timeout=10).status_code == 200
        responses = [f.result() for f in futures]

    assert [r.status_code for r in responses] == [201] * uploads, responses[0].text
    landed = api.stack.object_store.list(f"landing/{workflow.id}/customers/")
    assert sorted(o.key.rsplit("/", 1)[1] for o in landed) == [
        f"part-{i:02d}.csv" for i in range(uploads)
    ]
