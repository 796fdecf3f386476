"""Waiting on a condition with a deadline, and what each thread is doing meanwhile."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls `condition` until it holds; fails naming `what` once `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {timeout} s")
        time.sleep(0.01)


def stack(thread_id: int | None) -> list[tuple[str, str]]:
    """(file, function) of each Python frame a thread is in, innermost first."""
    frame = sys._current_frames().get(thread_id) if thread_id is not None else None
    frames = []
    while frame is not None:
        frames.append((frame.f_code.co_filename, frame.f_code.co_name))
        frame = frame.f_back
    return frames


def waiting_in(thread: threading.Thread, function: str) -> bool:
    """Whether `thread` waits on a lock or condition somewhere inside `function`."""
    names = [name for _, name in stack(thread.ident)]
    return function in names and names[0] in ("wait", "_wait_for_tstate_lock", "acquire")


def threads_in(path_part: str) -> list[str]:
    """The threads (Python's, and native ones running Python code, such as Arrow's I/O
    threads) with a frame in a file whose path holds `path_part`."""
    names = {t.ident: t.name for t in threading.enumerate()}
    return [
        names.get(ident, f"native thread {ident}")
        for ident in sys._current_frames()
        if ident != threading.get_ident() and any(path_part in f for f, _ in stack(ident))
    ]
