"""A bounded pipe of byte chunks from a writer thread to a reader of a binary stream."""

from __future__ import annotations

import collections
import io
import threading
import time
from collections.abc import Callable
from typing import Any

from flowforge.errors import DeadlineExceeded


class PipeClosed(ValueError):
    """Read from a pipe that was closed: the data stops here, and not at its end.

    A ValueError, as reading any closed file is in Python's io."""


class ChunkPipe(io.RawIOBase):
    """At most `depth` chunks between one writer and one reader. The writer put()s bytes,
    then b"" at the end, or an exception, which the reader gets (through `on_error`) in
    place of data.

    close() lets go of everyone waiting, at once: a writer's put() returns False (what it
    was given is dropped) and a reader's readinto() raises PipeClosed, never EOF, so a
    stream cut short is not taken for a whole one. Reads after `expires_at` (a
    time.monotonic() instant) raise DeadlineExceeded, and a reader waits no longer than
    that for the writer, so a stalled writer cannot hold a reader past its caller's deadline.
    """

    def __init__(
        self,
        depth: int = 4,
        on_error: Callable[[BaseException], BaseException] = lambda e: e,
        expires_at: float | None = None,
        name: str = "the stream",
    ) -> None:
        super().__init__()
        self._chunks: collections.deque[bytes | BaseException] = collections.deque()
        self._depth = depth
        self._changed = threading.Condition()
        self._shut = False  # set once, under _changed, by close()
        self._buffer = memoryview(b"")  # reader side only
        self._eof = False  # reader side only
        self._on_error = on_error
        self._expires_at = expires_at
        self._name = name

    def put(self, item: bytes | BaseException) -> bool:
        """Waits for room, then hands `item` over; False once the pipe is closed."""
        with self._changed:
            while len(self._chunks) >= self._depth and not self._shut:
                self._changed.wait()
            if self._shut:
                return False
            self._chunks.append(item)
            self._changed.notify_all()
            return True

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        """Fills target completely unless the stream ends first (no short reads)."""
        if self._shut:
            raise PipeClosed(f"{self._name} was closed while being read")
        view = memoryview(target).cast("B")
        filled = 0
        while filled < len(view):
            if not self._buffer:
                if self._eof:
                    break
                item = self._take()
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

    def _take(self) -> bytes | BaseException:
        with self._changed:
            while True:
                if self._shut:
                    raise PipeClosed(f"{self._name} was closed while being read")
                left = None if self._expires_at is None else self._expires_at - time.monotonic()
                if left is not None and left <= 0:
                    raise DeadlineExceeded(f"deadline exceeded while reading {self._name}")
                if self._chunks:
                    item = self._chunks.popleft()
                    self._changed.notify_all()
                    return item
                self._changed.wait(left)

    def close(self) -> None:
        with self._changed:
            self._shut = True
            self._chunks.clear()
            self._changed.notify_all()
        super().close()
