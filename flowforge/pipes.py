"""A bounded pipe of byte chunks from a writer thread to a reader of a binary stream."""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable
from typing import Any


class ChunkPipe(io.RawIOBase):
    """At most `depth` chunks between the writer and the reader. The writer put()s bytes,
    then b"" at the end, or an exception, which the reader gets (through `on_error`) in
    place of data. Once the reader closes the pipe, put() drops what it is given, so a
    writer never blocks on a reader that left."""

    def __init__(
        self, depth: int = 4, on_error: Callable[[BaseException], BaseException] = lambda e: e
    ) -> None:
        super().__init__()
        self._chunks: queue.Queue[bytes | BaseException] = queue.Queue(depth)
        self._buffer = memoryview(b"")
        self._eof = False
        self._stop = threading.Event()
        self._on_error = on_error

    def put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._chunks.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        """Fills target completely unless the stream ends first (no short reads)."""
        view = memoryview(target).cast("B")
        filled = 0
        while filled < len(view):
            if not self._buffer:
                if self._eof:
                    break
                item = self._chunks.get()
                if isinstance(item, BaseException):
                    raise self._on_error(item) from None
                if not item:
                    self._eof = True
                    continue
                self._buffer = memoryview(item)
            n = min(len(view) - filled, len(self._buffer))
            view[filled : filled + n] = self._buffer[:n]
            self._buffer = self._buffer[n:]
            filled += n
        return filled

    def close(self) -> None:
        self._stop.set()
        super().close()
