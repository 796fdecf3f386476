"""The services' progress board: what a run reports is what a watch reads, runs end (failed
when their core raised), ended runs go after a while, and the board stays bounded. A clock
and a pause are injected: nothing here sleeps."""

from __future__ import annotations

import pytest

from flowforge.errors import NotFound
from flowforge.progress import ProgressBoard, follow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_run_reports_phase_and_counts_and_ends() -> None:
    board = ProgressBoard("bronze")
    with board.run("w", "j", "r1") as report:
        first = board.get("w", "j", "r1")
        assert first is not None and first.phase == "starting" and not first.done
        report("reading", bytes_read=10, bytes_total=100)
        report(rows=5)  # the phase stays
        now = board.get("w", "j", "r1")
        assert now is not None
        assert (now.phase, now.bytes_read, now.bytes_total, now.rows) == ("reading", 10, 100, 5)
        assert now.sequence > first.sequence
        with pytest.raises(TypeError):
            report(apples=1)
    ended = board.get("w", "j", "r1")
    assert ended is not None and ended.done and not ended.failed and ended.rows == 5
    report(rows=99)  # a report after the end changes nothing
    assert board.get("w", "j", "r1") == ended


def test_a_run_whose_core_raised_ends_failed() -> None:
    board = ProgressBoard("silver")
    with pytest.raises(ValueError), board.run("w", "j", "r") as report:
        report("checking", rows=3)
        raise ValueError("bad spec")
    ended = board.get("w", "j", "r")
    assert ended is not None and ended.done and ended.failed and ended.phase == "checking"


def test_ended_runs_go_after_a_while_and_the_board_is_bounded() -> None:
    clock = Clock()
    board = ProgressBoard("bronze", keep_seconds=60, max_runs=3, clock=clock)
    with board.run("w", "j", "old"):
        pass
    clock.now += 59
    assert board.get("w", "j", "old") is not None
    clock.now += 1
    assert board.get("w", "j", "old") is None  # ended 60 s ago
    with board.run("w", "j", "ended"):
        pass
    runs = [board.run("w", "j", f"running-{i}") for i in range(3)]
    for run in runs:
        run.__enter__()
    assert len(board) == 3
    assert board.get("w", "j", "ended") is None  # an ended run goes first
    assert board.get("w", "j", "running-2") is not None
    with board.run("w", "j", "one-more"):
        assert len(board) == 3
        assert board.get("w", "j", "running-0") is None  # then the oldest
    for run in runs[1:]:
        run.__exit__(None, None, None)


def test_follow_yields_changes_until_the_end_at_most_one_per_interval() -> None:
    board = ProgressBoard("gold")
    pauses: list[float] = []
    with board.run("w", "j", "r") as report:
        report("model 1 of 2", models_done=0, models_total=2)
        stream = follow(board, "w", "j", "r", start_wait=0, interval=0.25, pause=pauses.append)
        first = next(stream)
        assert (first.phase, first.models_done) == ("model 1 of 2", 0)
        report("model 2 of 2", models_done=1)
        report(models_done=2)  # two reports during one interval: the watch sees the last
        second = next(stream)
        assert (second.phase, second.models_done, second.done) == ("model 2 of 2", 2, False)
    last = next(stream)
    assert last.done and last.models_done == 2
    assert list(stream) == []
    assert pauses == [0.25, 0.25]


def test_follow_of_a_run_that_never_started_is_not_found() -> None:
    board = ProgressBoard("bronze")
    with pytest.raises(NotFound, match="no bronze run 'nope' of w/j started"):
        next(follow(board, "w", "j", "nope", start_wait=0))


def test_follow_ends_when_the_watcher_left() -> None:
    board = ProgressBoard("bronze")
    with board.run("w", "j", "r"):
        stream = follow(board, "w", "j", "r", active=lambda: False, pause=lambda _: None)
        assert not next(stream).done
        assert list(stream) == []
