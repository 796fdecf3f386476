"""The flow records a layer's progress at most once per interval, the newest report each
time, and the one still waiting when the layer ends. A clock is injected: no sleeps."""

from __future__ import annotations

from typing import Any

from orchestrator.progress import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_at_most_one_write_per_interval_the_newest_and_the_last_on_flush() -> None:
    clock, written = Clock(), []
    throttle = Throttle(written.append, 1.0, clock)
    throttle.offer({"rows": 1})  # the first is written at once
    for rows in range(2, 12):  # ten reports within the next 0.9 s
        clock.now += 0.09
        throttle.offer({"rows": rows})
    assert written == [{"rows": 1}]
    clock.now = 1.0
    throttle.offer({"rows": 12})
    assert written == [{"rows": 1}, {"rows": 12}]
    clock.now = 1.5
    throttle.offer({"rows": 13})
    throttle.flush()  # the layer ended: its last report is kept
    throttle.flush()  # nothing more waits
    assert written == [{"rows": 1}, {"rows": 12}, {"rows": 13}]


def test_a_failed_write_does_not_stop_the_next() -> None:
    clock, written = Clock(), []

    def record(value: dict[str, Any]) -> None:
        if value["rows"] == 1:
            raise ConnectionError("the store is restarting")
        written.append(value)

    throttle = Throttle(record, 1.0, clock)
    throttle.offer({"rows": 1})
    clock.now = 1.0
    throttle.offer({"rows": 2})
    assert written == [{"rows": 2}]
