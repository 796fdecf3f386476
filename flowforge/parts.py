"""Writes a layer's Parquet parts into a table's folder in the background, in bounded memory."""

from __future__ import annotations

import contextlib
import io
from concurrent.futures import Future, ThreadPoolExecutor

import polars as pl

from flowforge.manifest import ManifestObject
from flowforge.storage import ObjectStore
from flowforge.table_files import DataFile, write_part
from flowforge.tables import TableRef


def write_parquet(
    store: ObjectStore, key: str, frame: pl.DataFrame, source_key: str = "", source_etag: str = ""
) -> ManifestObject:
    """Writes one frame as one zstd Parquet object and describes it for a manifest (the
    layers still committed by manifest; tables use flowforge.table_files)."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    size = buffer.tell()
    buffer.seek(0)
    store.put_bytes(key, buffer)
    return ManifestObject(
        key=key, size_bytes=size, rows=frame.height, source_key=source_key, source_etag=source_etag
    )


class PartWriter:
    """Collects frames and writes a part whenever about `target_bytes` have gathered.

    One part is written in a background thread while the next one gathers, so parsing
    and uploading overlap; at most two parts are in memory at any time. A part holds the
    rows of one source object only (its add action's stats then name it).
    """

    def __init__(
        self,
        store: ObjectStore,
        table: TableRef,
        target_bytes: int,
        stats_columns: tuple[str, ...] = (),
    ) -> None:
        self._store = store
        self._table = table
        self._target = target_bytes
        self._stats = stats_columns
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="part-writer")
        self._in_flight: Future[DataFile] | None = None
        self._frames: list[pl.DataFrame] = []
        self._bytes = 0
        self._source = ("", "")
        self.written: list[DataFile] = []

    def start_source(self, source_key: str, source_etag: str) -> None:
        """Parts from here on are attributed to this source object."""
        self.flush()
        self._source = (source_key, source_etag)

    def add(self, frame: pl.DataFrame, approx_bytes: int) -> None:
        self._frames.append(frame)
        self._bytes += approx_bytes
        if self._bytes >= self._target:
            self.flush()

    def flush(self) -> None:
        if not self._frames:
            return
        frame = pl.concat(self._frames, how="vertical", rechunk=False)
        self._frames, self._bytes = [], 0
        self._wait()
        self._in_flight = self._pool.submit(
            write_part, self._store, self._table, frame, self._stats, *self._source
        )

    def _wait(self) -> None:
        if self._in_flight is not None:
            self.written.append(self._in_flight.result())
            self._in_flight = None

    def discard_source(self, source_key: str) -> None:
        """Drops everything gathered or written for one source (to read it again)."""
        self._frames, self._bytes = [], 0
        self._wait()
        doomed = [o for o in self.written if o.source_key == source_key]
        self.written = [o for o in self.written if o.source_key != source_key]
        self._store.delete_keys(o.key for o in doomed)

    def abandon(self) -> list[DataFile]:
        """Stops without writing what is gathered; returns every part written (to delete)."""
        self._frames, self._bytes = [], 0
        with contextlib.suppress(Exception):  # a part that failed was not written
            self._wait()
        self._pool.shutdown(wait=True, cancel_futures=True)
        return self.written

    def close(self) -> list[DataFile]:
        try:
            self.flush()
            self._wait()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        return self.written
