"""Writes one run's rejected rows into the rejects table's folder, ready to commit."""

from __future__ import annotations

from collections import Counter

from flowforge.bronze_columns import REJECT_STATS
from flowforge.storage import ObjectStore
from flowforge.table_files import DataFile, write_part
from flowforge.tables import TableRef
from services.bronze.rows import Reject
from services.bronze.transform import Audit, rejects_frame

REJECTS_PER_FILE = 100_000


class RejectWriter:
    """Rejected rows in row order, in files of at most REJECTS_PER_FILE rows, each holding
    one landing file's rows (so its add action's stats name the file)."""

    def __init__(self, store: ObjectStore, table: TableRef) -> None:
        self._store, self._table = store, table
        self._pending: list[Reject] = []
        self._audit: Audit | None = None
        self.kinds = Counter[str]()  # of the current landing file
        self.written: list[DataFile] = []

    def start_source(self, audit: Audit) -> None:
        self._flush()
        self._audit, self.kinds = audit, Counter()

    def add(self, rejects: list[Reject]) -> None:
        self._pending.extend(rejects)
        self.kinds.update(r.kind for r in rejects)
        if len(self._pending) >= REJECTS_PER_FILE:
            self._flush()

    def _flush(self) -> None:
        if not self._pending or self._audit is None:
            return
        audit = self._audit
        frame = rejects_frame(sorted(self._pending, key=lambda r: r.row_number), audit)
        self._pending = []
        self.written.append(
            write_part(
                self._store, self._table, frame, REJECT_STATS, audit.source_key, audit.source_etag
            )
        )

    def discard_source(self) -> None:
        """Drops the current landing file's rejects (it is being read again)."""
        source = self._audit.source_key if self._audit else ""
        doomed = [f for f in self.written if f.source_key == source]
        self.written = [f for f in self.written if f.source_key != source]
        self._store.delete_keys(f.key for f in doomed)
        self._pending, self.kinds = [], Counter()

    def finish_source(self) -> Counter[str]:
        self._flush()
        return self.kinds

    def close(self) -> list[DataFile]:
        self._flush()
        return self.written

    def abandon(self) -> list[DataFile]:
        """Stops without writing what is pending; returns every file written (to delete)."""
        self._pending = []
        return self.written
