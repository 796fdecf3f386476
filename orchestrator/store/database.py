"""Opening the executions store: the engine for FLOWFORGE_DATABASE_URL, migrated to head.

SQLite (the default, a file under the state folder) runs in WAL mode with a busy timeout
so the flow and the CLI or API can use it at once; PostgreSQL goes through psycopg 3.
Migrations ship in the package and run on open, serialised between processes.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from flowforge.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed number: the PostgreSQL advisory lock that serialises migrations.
_MIGRATION_LOCK = 0x466C6F77
log = logging.getLogger("orchestrator.store")
P = ParamSpec("P")
R = TypeVar("R")


class HasEngine(Protocol):
    engine: Engine
    reconnect_seconds: float


S = TypeVar("S", bound=HasEngine)


def database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        # postgresql:// means psycopg 3 here (SQLAlchemy would otherwise pick psycopg2).
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url
    path = Path(settings.state_dir).resolve() / "flowforge.db"
    return f"sqlite:///{path}"


def open_engine(url: str, migrate: bool = True) -> Engine:
    parsed = make_url(url)
    # hide_parameters: a failed statement's text in an error or a log line never carries
    # the values it wrote (a webhook URL and its token, say).
    options: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": 30}
    engine = create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate:
        upgrade(engine)
    return engine


def connection_lost(engine: Engine, exc: DBAPIError) -> bool:
    """Whether a failed call may succeed once the database is back (not a bad statement)."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if engine.dialect.name == "sqlite":  # SQLite raises OperationalError for bad SQL too
        return "database is locked" in str(exc.orig)
    return True  # PostgreSQL: refused, reset, shutting down, starting up


def reconnecting(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Runs a store call again while its database connection is lost, with backoff."""

    @functools.wraps(method)
    def call(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        deadline, delay = time.monotonic() + self.reconnect_seconds, 0.25
        while True:
            try:
                return method(self, *args, **kwargs)
            except DBAPIError as exc:
                if not connection_lost(self.engine, exc) or time.monotonic() + delay > deadline:
                    raise
                # The class name only: a driver's message may carry the connection string.
                log.warning("executions store: %s in %s; retrying in %.2f s",
                            type(exc.orig).__name__, method.__name__, delay)  # fmt: skip
                time.sleep(delay)
                delay = min(delay * 2, 4.0)

    return call


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    """Applies every migration not yet applied; safe when several processes open at once."""
    config = alembic_config()
    if engine.dialect.name == "sqlite":
        database = engine.url.database or ""
        lock_path = Path(f"{database}.migrate.lock") if database not in ("", ":memory:") else None
        with _file_lock(lock_path), engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class _file_lock:  # noqa: N801 (used as a context manager)
    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._handle: Any = None

    def __enter__(self) -> None:
        if self._path is not None:
            self._handle = self._path.open("a")
            fcntl.flock(self._handle, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
