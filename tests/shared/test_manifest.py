"""The manifest protocol on the real object store: atomic commits, races, garbage."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flowforge.errors import Conflict, FailedPrecondition
from flowforge.layout import Dataset, JobKey
from flowforge.manifest import (
    Manifest,
    ManifestObject,
    commit,
    read_committed,
    require_committed,
    start_run,
)
from flowforge.settings import Settings
from flowforge.storage import ObjectStore, make_client


def _write_run(store: ObjectStore, dataset: Dataset, run_id: str) -> Manifest:
    prefix = start_run(store, dataset, run_id, read_committed(store, dataset))
    key = prefix + "part-0.parquet"
    store.put_bytes(key, run_id.encode())
    obj = ManifestObject(key=key, size_bytes=len(run_id), rows=1)
    return Manifest(dataset=dataset.prefix, run_id=run_id, data_objects=[obj])


def test_store_honours_conditional_writes(store: ObjectStore) -> None:
    assert store.supports_conditional_writes() is True


class IgnoringClient:
    """The real S3 client to the real store, dropping one conditional header from PUTs:
    a store that ignores it (SeaweedFS honours both, so this fault cannot be caused here
    for real)."""

    def __init__(self, client: Any, ignored: str) -> None:
        self._client, self._ignored = client, ignored

    def put_object(self, **kwargs: Any) -> Any:
        kwargs.pop(self._ignored, None)
        return self._client.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.mark.parametrize("ignored", ["IfNoneMatch", "IfMatch"])
def test_a_store_ignoring_either_condition_commits_without_conditions(
    settings: Settings, job: JobKey, ignored: str
) -> None:
    store = ObjectStore(settings, client=IgnoringClient(make_client(settings), ignored))
    assert store.supports_conditional_writes() is False
    assert list(store.list("_flowforge/probe/")) == []  # the probe cleaned up
    # Commits still publish (plain PUTs; one execution per job is what keeps writers apart).
    dataset = Dataset.for_layer("silver", job)
    commit(store, dataset, _write_run(store, dataset, "r1"), None)
    commit(store, dataset, _write_run(store, dataset, "r2"), read_committed(store, dataset))
    committed = read_committed(store, dataset)
    assert committed is not None and committed.manifest.run_id == "r2"
    assert store.get_bytes(committed.manifest.data_objects[0].key) == b"r2"
    assert list(store.list(dataset.run_prefix("r1"))) == []  # r1 collected


def test_uncommitted_run_leaves_previous_output_readable(store: ObjectStore, job: JobKey) -> None:
    dataset = Dataset.for_layer("silver", job)
    assert read_committed(store, dataset) is None
    with pytest.raises(FailedPrecondition, match="has not been committed"):
        require_committed(store, dataset, "silver")
    first = _write_run(store, dataset, "r1")
    commit(store, dataset, first, None)
    _write_run(store, dataset, "r2")  # crashes before its commit
    committed = read_committed(store, dataset)
    assert committed is not None and committed.manifest.run_id == "r1"
    assert store.get_bytes(committed.manifest.data_objects[0].key) == b"r1"


def test_racing_commits_one_wins_loser_aborted(store: ObjectStore, job: JobKey) -> None:
    dataset = Dataset.for_layer("silver", job)
    commit(store, dataset, _write_run(store, dataset, "base"), None)
    previous = read_committed(store, dataset)
    runs = {name: _write_run(store, dataset, name) for name in ("a", "b")}
    outcomes: dict[str, str] = {}
    barrier = threading.Barrier(2)

    def attempt(name: str) -> None:
        barrier.wait()
        try:
            commit(store, dataset, runs[name], previous)
            outcomes[name] = "won"
        except Conflict as exc:
            outcomes[name] = exc.status + ": " + exc.message

    threads = [threading.Thread(target=attempt, args=(n,)) for n in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [n for n, o in outcomes.items() if o == "won"]
    assert len(winners) == 1, outcomes
    loser = next(n for n in runs if n not in winners)
    assert outcomes[loser].startswith("ABORTED: another run committed")
    committed = read_committed(store, dataset)
    assert committed is not None and committed.manifest.run_id == winners[0]
    # The winner's data is intact; the loser's and the superseded base run are gone.
    assert store.get_bytes(committed.manifest.data_objects[0].key) == winners[0].encode()
    assert list(store.list(dataset.run_prefix(loser))) == []
    assert list(store.list(dataset.run_prefix("base"))) == []


def test_start_run_clears_an_earlier_uncommitted_attempt(store: ObjectStore, job: JobKey) -> None:
    dataset = Dataset.for_layer("gold", job)
    store.put_bytes(dataset.run_prefix("r1") + "stale.parquet", b"x")
    start_run(store, dataset, "r1", None)
    assert list(store.list(dataset.run_prefix("r1"))) == []
