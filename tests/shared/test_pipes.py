"""ChunkPipe and PrefetchReader: nobody waits for ever on a pipe that was closed."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from flowforge.errors import DeadlineExceeded, Unavailable
from flowforge.layout import JobKey
from flowforge.pipes import ChunkPipe, PipeClosed
from flowforge.storage import CLOSE_WAIT_SECONDS, ObjectStore
from tests.waiting import wait_until, waiting_in

RELEASED_WITHIN = 2.0  # seconds a closed pipe may take to let a waiting thread go


def start(target: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Runs target() in a thread; the dict gets its result or its exception."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = target()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_close_releases_a_reader_and_a_writer_waiting_on_the_pipe() -> None:
    empty, full = ChunkPipe(depth=1), ChunkPipe(depth=1)
    assert full.put(b"first") is True
    reader, read = start(lambda: empty.readinto(bytearray(10)))
    writer, written = start(lambda: full.put(b"second"))
    wait_until(lambda: waiting_in(reader, "readinto"), 5, "reading")
    wait_until(lambda: waiting_in(writer, "put"), 5, "writing")

    empty.close()
    full.close()
    reader.join(RELEASED_WITHIN)
    writer.join(RELEASED_WITHIN)
    assert not reader.is_alive() and not writer.is_alive()
    # The reader is told the data stopped short (never an end of file); the writer that
    # its chunk was dropped.
    assert isinstance(read["error"], PipeClosed)
    assert written == {"result": False}
    with pytest.raises(PipeClosed):
        full.read(1)


def test_a_reader_waits_no_longer_than_its_deadline() -> None:
    pipe = ChunkPipe(expires_at=time.monotonic() + 0.3, name="s3://bucket/slow.csv")
    reader, read = start(lambda: pipe.read(10))
    reader.join(0.3 + RELEASED_WITHIN)
    assert not reader.is_alive()
    assert isinstance(read["error"], DeadlineExceeded)
    assert read["error"].message == "deadline exceeded while reading s3://bucket/slow.csv"


def test_data_then_the_end_or_the_writers_error_reach_the_reader() -> None:
    pipe = ChunkPipe(depth=2, on_error=lambda e: Unavailable(f"translated: {e}"))
    writer, _ = start(lambda: [pipe.put(b"abc"), pipe.put(b"def"), pipe.put(b"")])
    assert pipe.read(4) == b"abcd"  # no short reads across chunks
    assert pipe.read(10) == b"ef"
    assert pipe.read(10) == b""
    writer.join(RELEASED_WITHIN)
    failing = ChunkPipe(on_error=lambda e: Unavailable(f"translated: {e}"))
    failing.put(ConnectionResetError("reset"))
    with pytest.raises(Unavailable, match="translated: reset"):
        failing.read(1)


def test_closing_a_prefetch_reader_stops_its_thread(store: ObjectStore, job: JobKey) -> None:
    key = f"landing/{job.workflow_id}/{job.job_id}/big.bin"
    store.put_bytes(key, bytes(4 << 20))
    reader = store.open_stream(key, chunk_bytes=64 << 10)  # 4 chunks fill its queue
    fetcher = reader._thread
    wait_until(lambda: waiting_in(fetcher, "put"), 10, "waiting for room in the pipe")

    started = time.monotonic()
    reader.close()
    assert not fetcher.is_alive()
    assert time.monotonic() - started < CLOSE_WAIT_SECONDS
    with pytest.raises(PipeClosed):
        reader.read(1)


def test_a_prefetch_reader_read_to_its_end_leaves_no_thread(
    store: ObjectStore, job: JobKey
) -> None:
    key = f"landing/{job.workflow_id}/{job.job_id}/small.bin"
    data = bytes(range(256)) * 1000
    store.put_bytes(key, data)
    reader = store.open_stream(key, chunk_bytes=10_000)
    assert reader.read(len(data) + 1) == data
    reader._thread.join(RELEASED_WITHIN)
    assert not reader._thread.is_alive()
    reader.close()
