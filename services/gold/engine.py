"""One gold build's DuckDB database: views over the committed inputs, locked, then the models.

A session is one in-memory DuckDB per request (never shared between threads). It gets
the memory, thread and spill limits from settings, the object store's keys as a secret,
the view `silver` and the `dim_*` views over exactly the files their manifests list;
then external access is narrowed to those files and this run's output prefix and the
configuration is locked, so no model can read or write anything else even if it got
past the SQL guard.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import duckdb

from flowforge.duckdb_s3 import connect, read_parquet_sql, scrub, sql_identifier, sql_literal
from flowforge.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    FlowForgeError,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from flowforge.runtime import Deadline, resource_exhausted_from
from flowforge.settings import Settings
from flowforge.storage import s3_url

_WATCH_INTERVAL = 0.1


@dataclass(frozen=True)
class ModelRun:
    """What one model wrote: its object, rows, columns and the first rows as JSON."""

    name: str
    key: str
    rows: int
    size_bytes: int
    columns: list[tuple[str, str]]
    preview_rows: list[str]  # JSON objects, one per row


@dataclass(frozen=True)
class Inputs:
    """Object keys of the committed inputs: silver's parts and each dimension's parts."""

    silver: list[str]
    dimensions: dict[str, list[str]]


class GoldSession:
    def __init__(self, settings: Settings, inputs: Inputs, output_prefix: str) -> None:
        self._settings = settings
        self._inputs = inputs
        self._output_prefix = output_prefix
        base = settings.gold_temp_directory or settings.state_dir / "gold-spill"
        base.mkdir(parents=True, exist_ok=True)
        self._spill = Path(tempfile.mkdtemp(prefix="build-", dir=base))
        self._con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> GoldSession:
        try:
            self._con = self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        shutil.rmtree(self._spill, ignore_errors=True)

    def _open(self) -> duckdb.DuckDBPyConnection:
        settings = self._settings
        con = connect(
            settings,
            {
                "memory_limit": settings.gold_memory_limit,
                "threads": settings.gold_threads,
                "temp_directory": str(self._spill),
            },
        )
        try:
            if settings.gold_max_temp_size:
                # Only a SET on the open database reaches DuckDB's buffer manager.
                con.execute(
                    f"SET max_temp_directory_size = {sql_literal(settings.gold_max_temp_size)}"
                )
            self._create_views(con)
            self._lock_down(con)
        except duckdb.Error as exc:
            con.close()
            raise self._translate(exc, "setting up the inputs") from None
        except BaseException:
            con.close()
            raise
        return con

    def _urls(self, keys: list[str]) -> list[str]:
        return [s3_url(self._settings, key) for key in keys]

    def _create_views(self, con: duckdb.DuckDBPyConnection) -> None:
        views = {"silver": self._inputs.silver} | {
            f"dim_{name}": keys for name, keys in self._inputs.dimensions.items()
        }
        for view, keys in views.items():
            try:
                con.execute(
                    f"CREATE VIEW {sql_identifier(view)} AS {read_parquet_sql(self._urls(keys))}"
                )
            except duckdb.Error as exc:
                # Where in our own SQL it failed means nothing to the caller.
                raise self._translate(exc, f"reading {view}", located=False) from None

    def _lock_down(self, con: duckdb.DuckDBPyConnection) -> None:
        readable = self._urls(self._inputs.silver) + [
            url for keys in self._inputs.dimensions.values() for url in self._urls(keys)
        ]
        output = s3_url(self._settings, self._output_prefix)
        con.execute(f"SET allowed_paths = [{', '.join(sql_literal(u) for u in readable)}]")
        con.execute(f"SET allowed_directories = [{sql_literal(output)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise RuntimeError("the gold session is not open")
        return self._con

    def columns(self, view: str = "silver") -> list[tuple[str, str]]:
        try:
            relation = self.con.table(view)
            return [(n, str(t)) for n, t in zip(relation.columns, relation.types, strict=True)]
        except duckdb.Error as exc:
            raise self._translate(exc, f"reading {view}") from None

    def run_model(self, name: str, sql: str, deadline: Deadline, preview_rows: int) -> ModelRun:
        """Runs one (checked) SELECT and writes its result as {output_prefix}{name}.parquet."""
        key = f"{self._output_prefix}{name}.parquet"
        url = s3_url(self._settings, key)
        watch = Watchdog(self.con, name, self._settings.gold_model_timeout_seconds, deadline)
        with watch:
            try:
                relation = self.bind(sql)
                if relation is None:
                    # Only a statement that is no query returns nothing (and it has run,
                    # inside the lock); the guard lets none through.
                    raise InvalidArgument(f"model {name!r} is not a query: it returns no rows")
                columns = [
                    (n, str(t)) for n, t in zip(relation.columns, relation.types, strict=True)
                ]
                refuse_duplicate_columns(name, [n for n, _ in columns])
                relation.create_view("__gold_model", replace=True)
                stats = self.con.execute(
                    f"COPY __gold_model TO {sql_literal(url)} "
                    "(FORMAT parquet, COMPRESSION zstd, RETURN_STATS)"
                ).fetchone()
                preview = self.con.execute(
                    "SELECT to_json(p)::VARCHAR FROM "
                    "(SELECT * FROM read_parquet(?, hive_partitioning = false) LIMIT ?) p",
                    [url, preview_rows],
                ).fetchall()
            except duckdb.Error as exc:
                raise watch.reason or self._translate(exc, f"model {name!r}") from None
        if stats is None:
            raise Unavailable(f"model {name!r}: DuckDB reported nothing about {url}")
        return ModelRun(
            name=name,
            key=key,
            rows=int(stats[1]),
            size_bytes=int(stats[2]),
            columns=columns,
            preview_rows=[row[0] for row in preview],
        )

    def bind(self, sql: str) -> duckdb.DuckDBPyRelation | None:
        """The query as a relation (bound, not run yet); None for a statement (run)."""
        try:
            return self.con.sql(sql)
        except (duckdb.BinderException, duckdb.CatalogException) as exc:
            # The relation API drops DuckDB's "LINE n: ..." pointer. Binding the same text
            # again as a statement fails the same way, before running anything, with it.
            try:
                self.con.execute(sql)
            except type(exc) as located:
                raise located from None
            raise

    def _translate(self, exc: duckdb.Error, what: str, located: bool = True) -> FlowForgeError:
        """DuckDB's error as the domain error a caller can act on; the secret scrubbed."""
        message = scrub(str(exc), self._settings)
        if not located:
            message = message.split("\n\nLINE ", 1)[0]
        settings = self._settings
        exhausted = resource_exhausted_from(exc)
        if isinstance(exc, duckdb.OutOfMemoryException) or exhausted is not None:
            first_line = message.strip().splitlines()[0] if message.strip() else message
            return ResourceExhausted(
                f"{what} needs more memory or spill space than a gold build may use "
                f"(FLOWFORGE_GOLD_MEMORY_LIMIT={settings.gold_memory_limit}, "
                f"FLOWFORGE_GOLD_MAX_TEMP_SIZE={settings.gold_max_temp_size or 'DuckDB default'}, "
                f"spilling to FLOWFORGE_GOLD_TEMP_DIRECTORY={self._spill.parent})"
                f": {first_line}"
            )
        if isinstance(exc, duckdb.HTTPException):
            status = getattr(exc, "status_code", 0)
            if status in (403, 404):
                return FailedPrecondition(f"{what}: the object store answered {status}: {message}")
            return Unavailable(f"{what}: the object store failed: {message}")
        if isinstance(exc, duckdb.IOException):
            return Unavailable(f"{what}: reading or writing the object store failed: {message}")
        if isinstance(exc, (duckdb.InternalException, duckdb.FatalException)):
            raise exc  # a DuckDB bug: logged with its traceback, answered INTERNAL
        return InvalidArgument(f"{what}: {message}")


def refuse_duplicate_columns(model: str, names: list[str]) -> None:
    """Parquet needs distinct names (DuckDB would rename the second `a` to `a_1`)."""
    seen: set[str] = set()
    for column in names:
        if column.lower() in seen:
            raise InvalidArgument(
                f"model {model!r} returns more than one column named {column!r}: "
                "give each column its own name (AS ...)"
            )
        seen.add(column.lower())


class Watchdog:
    """Interrupts the running query when the model's time is up or the caller went away."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, model: str, timeout: float, deadline: Deadline
    ) -> None:
        self._con = con
        self._model = model
        self._timeout = timeout
        self._deadline = deadline
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="gold-watchdog", daemon=True)
        self.reason: FlowForgeError | None = None

    def __enter__(self) -> Watchdog:
        self._ends = time.monotonic() + self._timeout
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(_WATCH_INTERVAL):
            if time.monotonic() >= self._ends:
                self.reason = DeadlineExceeded(
                    f"model {self._model!r} ran longer than {self._timeout:g}s "
                    "(FLOWFORGE_GOLD_MODEL_TIMEOUT_SECONDS)"
                )
            else:
                try:
                    self._deadline.check(f"running model {self._model!r}")
                except FlowForgeError as exc:
                    self.reason = exc
            if self.reason is not None:
                with contextlib.suppress(Exception):
                    self._con.interrupt()
                return
