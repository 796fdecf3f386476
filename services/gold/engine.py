"""One gold build's DuckDB database: views over the committed inputs, locked, then the models.

A session is one in-memory DuckDB in the build's own process (see worker.py). It gets
the memory, thread and spill limits from settings, the object store's keys as a secret,
and its input views (`silver` and `dim_*` for a job; `silver.<job>`, `dim_*` for a
workflow) over exactly the files of the table versions the service resolved (never
delta_scan: it reads any table's log whatever the settings say); then external access is
narrowed to those files and the build's own output files (one `part-{uuid}.parquet` per
model, named by the service) and the configuration is locked, so no model can read or
write anything else even if it got past the SQL guard. In a workflow build each model
becomes the view `gold.<model>` over its file once written, for the models after it.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import duckdb

from flowforge.duckdb_s3 import (
    add_s3_secret,
    checked_url,
    duckdb_url,
    open_database,
    read_parquet_sql,
    sql_identifier,
    sql_literal,
)
from flowforge.errors import DeadlineExceeded, FlowForgeError, InvalidArgument, Unavailable
from flowforge.settings import Settings
from services.gold.duckdb_errors import relocate, translate
from services.gold.storable import storable

# A preview is for a glance in a UI or a log, not for moving data.
MAX_PREVIEW_BYTES = 256 << 10


@dataclass(frozen=True)
class ModelRun:
    """What one model wrote: its object, rows, columns and the first rows as JSON."""

    name: str
    key: str
    rows: int
    size_bytes: int
    columns: list[tuple[str, str]]
    preview_rows: list[str]  # JSON objects, one per row
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class Source:
    """One input view: the object keys of a table version's files, or, for a version that
    has none (a table with no rows), its columns as (name, DuckDB type): an empty view."""

    keys: list[str]
    columns: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Inputs:
    """The input views by name (`silver`, `dim_countries`, `silver.orders`) and the object
    keys the build writes (each model's part file), the only objects it may touch."""

    views: dict[str, Source]
    outputs: list[str] = field(default_factory=list)


class GoldSession:
    """DuckDB for one build; `spill` is the build's own folder (removed on close).

    `database` is a fresh one from open_database() opened ahead (a build's process opens
    it while it waits for its build: loading httpfs takes 85 ms or more); None opens one.
    """

    def __init__(
        self,
        settings: Settings,
        inputs: Inputs,
        spill: Path,
        database: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        self._settings = settings
        self._inputs = inputs
        self._spill = spill
        self._database = database
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
        for con in (self._con, self._database):
            if con is not None:
                con.close()
        self._con = self._database = None
        shutil.rmtree(self._spill, ignore_errors=True)

    def _open(self) -> duckdb.DuckDBPyConnection:
        settings = self._settings
        # Every URL is checked before DuckDB sees any (duckdb_url refuses `..` and the like).
        views = {name: self._urls(source.keys) for name, source in self._inputs.views.items()}
        outputs = self._urls(self._inputs.outputs)
        con, self._database = self._database or open_database(), None
        try:
            limits = {
                "memory_limit": settings.gold_memory_limit,
                "threads": str(settings.gold_threads),
                "temp_directory": checked_url(str(self._spill)),
                "max_temp_directory_size": settings.gold_max_temp_size,
            }
            for name, value in limits.items():
                con.execute(f"SET {name} = {sql_literal(value)}")
            add_s3_secret(con, settings)
            self._create_views(con, views)
            self._lock_down(con, [url for urls in views.values() for url in urls] + outputs)
        except duckdb.Error as exc:
            con.close()
            raise self._translate(exc, "setting up the inputs", sql=None) from None
        except BaseException:
            con.close()
            raise
        return con

    def _urls(self, keys: list[str]) -> list[str]:
        return [duckdb_url(self._settings, key) for key in keys]

    def _create_views(self, con: duckdb.DuckDBPyConnection, views: dict[str, list[str]]) -> None:
        for view, urls in views.items():
            columns = self._inputs.views[view].columns
            body = read_parquet_sql(urls) if urls else empty_sql(columns)
            try:
                create_view(con, view, body)
            except duckdb.Error as exc:
                # Where in our own SQL it failed means nothing to the caller.
                raise self._translate(exc, f"reading {view}", sql=None) from None

    def _lock_down(self, con: duckdb.DuckDBPyConnection, paths: list[str]) -> None:
        # Exactly the input files and this build's own part files: nothing else is read
        # or written, not even another file in the same folder.
        con.execute(f"SET allowed_paths = [{', '.join(sql_literal(u) for u in paths)}]")
        con.execute("SET allowed_directories = []")
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
            raise self._translate(exc, f"reading {view}", sql=None) from None

    def run_model(
        self, name: str, sql: str, key: str, preview_rows: int, view: str | None = None
    ) -> ModelRun:
        """Runs one (checked) SELECT and writes its result to the object `key` (one of the
        session's outputs); `view` names a view to create over it for the models after."""
        url = duckdb_url(self._settings, key)
        what = f"model {name!r}"
        with Watchdog(self.con, name, self._settings.gold_model_timeout_seconds) as watch:
            try:
                relation = self.bind(sql)
                if relation is None:
                    # Only a statement that is no query returns nothing (and it has run,
                    # inside the lock); the guard lets none through.
                    raise InvalidArgument(f"model {name!r} is not a query: it returns no rows")
                columns = [
                    (n, str(t)) for n, t in zip(relation.columns, relation.types, strict=True)
                ]
            except duckdb.Error as exc:
                raise watch.reason or self._translate(exc, what) from None
            refuse_duplicate_columns(name, [n for n, _ in columns])
            stored = storable(name, relation.columns, relation.types)
            columns = [(n, stored.types.get(n, t)) for n, t in columns]
            try:
                # The query keeps its own lines (from the second on), so DuckDB's "LINE n"
                # pointer maps back to the model's text; see relocate().
                stats = self.con.execute(
                    f"COPY ({stored.select}\n{sql}\n{stored.close}) TO {sql_literal(url)} "
                    "(FORMAT parquet, COMPRESSION zstd, RETURN_STATS)"
                ).fetchone()
                preview = self.con.execute(
                    "SELECT to_json(p)::VARCHAR FROM "
                    "(SELECT * FROM read_parquet(?, hive_partitioning = false) LIMIT ?) p",
                    [url, preview_rows],
                ).fetchall()
            except duckdb.Error as exc:
                # The preview's statement holds no "LINE" pointer into the model: dropped.
                raise watch.reason or self._translate(exc, what, sql=sql) from None
        if stats is None:
            raise Unavailable(f"model {name!r}: DuckDB reported nothing about {url}")
        if view is not None:
            create_view(self.con, view, read_parquet_sql([url]))
        return ModelRun(
            name=name,
            key=key,
            rows=int(stats[1]),
            size_bytes=int(stats[2]),
            columns=columns,
            preview_rows=bounded_rows([row[0] for row in preview]),
            warnings=stored.warnings,
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

    def _translate(self, exc: duckdb.Error, what: str, sql: str | None = "") -> FlowForgeError:
        """`sql`: the model's text when the failing statement wraps it as run_model does,
        None when the statement is FlowForge's own, "" when it is the model's text alone."""
        message = str(exc)
        if sql:
            message = relocate(message, sql)
        elif sql is None:
            message = message.split("\n\nLINE ", 1)[0]
        return translate(exc, what, self._settings, self._spill.parent, message)


def create_view(con: duckdb.DuckDBPyConnection, view: str, body: str) -> None:
    """`view` is `name` or `schema.name` (IDs hold no dots); the schema is made if new."""
    schema, _, name = view.rpartition(".")
    if schema:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {sql_identifier(schema)}")
        target = f"{sql_identifier(schema)}.{sql_identifier(name)}"
    else:
        target = sql_identifier(name)
    con.execute(f"CREATE VIEW {target} AS {body}")


def empty_sql(columns: list[tuple[str, str]]) -> str:
    """A SELECT of no rows with these columns: a table version without files."""
    cast = ", ".join(f"CAST(NULL AS {t}) AS {sql_identifier(n)}" for n, t in columns)
    return f"SELECT {cast} WHERE false"


def bounded_rows(rows: list[str]) -> list[str]:
    """The rows that fit in MAX_PREVIEW_BYTES as a JSON array; trailing rows left out."""
    kept, size = [], 2
    for row in rows:
        size += len(row.encode()) + 1
        if size > MAX_PREVIEW_BYTES:
            break
        kept.append(row)
    return kept


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
    """Interrupts the running query when the model's time is up.

    The interrupt is cooperative: a query busy inside one long function call only sees it
    when the call returns. The build's parent process kills the process a moment later if
    the model has not stopped (sandbox.py); that is the hard bound.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, model: str, timeout: float) -> None:
        self._con = con
        self._model = model
        self._timeout = timeout
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="gold-watchdog", daemon=True)
        self.reason: DeadlineExceeded | None = None

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        if self._done.wait(self._timeout):
            return
        self.reason = model_timed_out(f"model {self._model!r}", self._timeout)
        with contextlib.suppress(Exception):
            self._con.interrupt()


def model_timed_out(what: str, timeout: float) -> DeadlineExceeded:
    # The same model over the same data takes as long again: retrying cannot help.
    return DeadlineExceeded(
        f"{what} ran longer than {timeout:g}s (FLOWFORGE_GOLD_MODEL_TIMEOUT_SECONDS)",
        retryable=False,
    )
