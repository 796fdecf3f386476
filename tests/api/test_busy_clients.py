"""Clients that hold what the API has little of: uploads that never finish, event streams
left open. Past the caps they are answered 503 or 429 with Retry-After, and the API keeps
answering everyone else. Real sockets against the API alone (SQLite, SeaweedFS)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from flowforge.settings import Settings
from flowforge.storage import ObjectStore
from orchestrator.api.app import create_app
from orchestrator.api.context import ApiContext
from orchestrator.store import Store
from orchestrator.store.database import open_engine
from orchestrator.workflows import parse_workflow
from tests.api import rawhttp
from tests.api.conftest import ApiServer
from tests.api.test_errors import error_of

UPLOADS = 2
STREAMS_PER_CLIENT = 2
STREAMS = 3
BOUNDARY = "flowforge-test-boundary"


@dataclass
class Busy:
    url: str
    workflow: str
    context: ApiContext  # the API's own: its upload places, to wait on (never asserted)


@pytest.fixture
def busy(settings: Settings, store: ObjectStore, tmp_path: Path) -> Iterator[Busy]:
    changes = {
        "api_max_concurrent_uploads": UPLOADS,
        "api_max_event_streams_per_client": STREAMS_PER_CLIENT,
        "api_max_event_streams": STREAMS,
    }
    workflow = f"busy-{uuid.uuid4().hex[:8]}"
    database = Store(open_engine(f"sqlite:///{tmp_path / 'flowforge.db'}"))
    app = create_app(settings.model_copy(update=changes), store=database, objects=store)
    try:
        with ApiServer(app) as url:
            database.save_workflow(parse_workflow(f"id: {workflow}\njobs:\n  - id: job\n"))
            yield Busy(url, workflow, app.state.context)
    finally:
        database.close()
    store.delete_prefix(f"landing/{workflow}/")


def retry_after(response: httpx.Response) -> int:
    seconds = int(response.headers["Retry-After"])
    assert seconds > 0
    return seconds


def wait_until(condition: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"still not {what} after {timeout}s"
        time.sleep(0.1)


def test_uploads_past_the_cap_are_503_with_retry_after(busy: Busy, store: ObjectStore) -> None:
    """Two uploads stalled half-way hold both places: a third upload (and a dimension) is
    503 naming the setting, /healthz still answers; once one ends, uploads go through."""
    url, workflow = busy.url, busy.workflow
    path = f"/api/workflows/{workflow}/jobs/job/files"
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(1 << 20),
    }

    def stalled(name: str) -> bytes:
        return (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{name}"\r\nContent-Type: text/csv\r\n\r\nid\n1\n'
        ).encode()

    def probe() -> httpx.Response:
        """An upload to a job that does not exist: 404 once admitted, 503 when refused."""
        csv = [("files", ("p.csv", b"id\n1\n", "text/csv"))]
        return httpx.post(f"{url}/api/workflows/{workflow}/jobs/nope/files", files=csv)

    with contextlib.ExitStack() as held:
        sockets = [
            held.enter_context(rawhttp.connect(url, "POST", path, headers, stalled(f"s{i}.csv")))
            for i in range(UPLOADS)
        ]
        # Both in before the first probe: a probe holds a place for a moment too, and a
        # stalled upload arriving in that moment would be the one refused.
        wait_until(lambda: busy.context.uploads.held() == UPLOADS, "holding both uploads")
        wait_until(lambda: probe().status_code == 503, "refusing a third upload")
        refused = probe()
        assert "FLOWFORGE_API_MAX_CONCURRENT_UPLOADS" in error_of(refused, 503)
        retry_after(refused)
        dimension = httpx.put(f"{url}/api/dimensions/busy", files={"file": ("d.csv", b"a\n1\n")})
        error_of(dimension, 503)
        retry_after(dimension)
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200

        sockets[0].close()  # the client leaves: its place is given back
        csv = [("files", ("after.csv", b"id\n2\n", "text/csv"))]
        wait_until(lambda: probe().status_code == 404, "admitting uploads again")
        landed = httpx.post(f"{url}{path}", files=csv)
        assert landed.status_code == 201, landed.text
    keys = sorted(o.key for o in store.list(f"landing/{workflow}/"))
    assert keys == [f"landing/{workflow}/job/after.csv"]  # the stalled ones left nothing


def streams(client: httpx.Client, held: contextlib.ExitStack, count: int) -> None:
    for _ in range(count):
        response = held.enter_context(client.stream("GET", "/api/events"))
        assert response.status_code == 200


def one_more(client: httpx.Client, **params: object) -> httpx.Response:
    """One more stream's answer: read whole when refused, left at once when streaming."""
    with client.stream("GET", "/api/events", params=params) as response:
        if response.status_code != 200:
            response.read()
        return response


def test_event_streams_past_the_caps_are_429_then_503(busy: Busy) -> None:
    """One client (127.0.0.1) may hold two streams: its third is 429. A second client
    (127.0.0.2) takes the last of the three places: its second is 503. A stream closed
    gives its place back."""
    url = busy.url
    second_address = httpx.HTTPTransport(local_address="127.0.0.2")
    with (
        httpx.Client(base_url=url, timeout=30) as first,
        httpx.Client(base_url=url, timeout=30, transport=second_address) as second,
        contextlib.ExitStack() as held_by_second,
    ):
        with contextlib.ExitStack() as held_by_first:
            streams(first, held_by_first, STREAMS_PER_CLIENT)
            third = one_more(first)
            assert "FLOWFORGE_API_MAX_EVENT_STREAMS_PER_CLIENT" in error_of(third, 429)
            retry_after(third)

            streams(second, held_by_second, 1)
            over = one_more(second)
            assert "FLOWFORGE_API_MAX_EVENT_STREAMS" in error_of(over, 503)
            retry_after(over)
            assert first.get("/healthz").status_code == 200
            # a polling round (`once`) is a stream too, for as long as it lasts
            error_of(one_more(first, once=True), 429)
        # The first client's streams are closed: their places come back.
        wait_until(
            lambda: second.get("/api/events", params={"once": True}).status_code == 200,
            "admitting streams again",
        )
        streams(first, held_by_second, 1)
