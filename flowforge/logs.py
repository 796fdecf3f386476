"""Structured logging: one JSON object per line, with known secrets masked."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowforge.settings import Settings

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
# Libraries that log request headers or credentials at DEBUG never go below INFO.
# websockets logs every frame at DEBUG, Prefect's events auth frame (with its API key or
# auth string) included.
_CHATTY = (
    "botocore", "boto3", "urllib3", "s3transfer", "aiobotocore", "hpack", "httpcore", "websockets",
)  # fmt: skip
# Libraries that log every HTTP request at INFO: httpx logs each of the served deployment's
# polls of Prefect (four a second) and each of the API's reconciles. Their warnings stay.
_PER_REQUEST = ("httpx",)
# Secrets of the Prefect client that may sit in this process's environment.
_PREFECT_SECRETS = ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING")
MASK = "***"


class SecretMasker(logging.Filter):
    """Replaces every configured secret value anywhere in a record with ***."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self.mask(record.getMessage())
            record.args = None
            for key, value in list(record.__dict__.items()):
                if key not in _RESERVED and isinstance(value, str):
                    setattr(record, key, self.mask(value))
            # An exception's message may hold one too (a URL a driver could not parse):
            # formatters use the cached, masked text (logging.Formatter does the same).
            if record.exc_info and not record.exc_text:
                record.exc_text = _PLAIN.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.mask(record.exc_text)
            if record.stack_info:
                record.stack_info = self.mask(record.stack_info)
        return True


_PLAIN = logging.Formatter()


def _exception(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    """The record's traceback: the masker's text when it made one."""
    if record.exc_text:
        return record.exc_text
    return formatter.formatException(record.exc_info) if record.exc_info else None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if exc := _exception(self, record):
            entry["exc"] = exc
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _RESERVED and not k.startswith("_")
        )
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        line = f"{line} {extras}" if extras else line
        if exc := _exception(self, record):
            line += "\n" + exc
        return line


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, as plain text, for masking."""
    values = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value"):
            values.append(value.get_secret_value())
    values += [t.token.get_secret_value() for t in settings.api_tokens]  # scoped API tokens
    values += [os.environ.get(name, "") for name in _PREFECT_SECRETS]
    return [v for v in values if v]


def configure_logging(settings: Settings, stream: Any = None) -> None:
    """Sets up the root logger once per process; safe to call again. The root logger ends
    with one console handler, this one: Prefect's logging setup puts its own there, which
    wrote every record twice (as text, then as JSON) on the same stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(SecretMasker(secret_values(settings)))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_flowforge", False) or _console(h)]:
        root.removeHandler(old)
    handler._flowforge = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    root.setLevel(level)
    handler.setLevel(level)  # records propagating from libraries' own loggers (Prefect) too
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    for name in _PER_REQUEST:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    sys.unraisablehook = _log_unraisable


def configure_command_logging(settings: Settings, level: str | None = None) -> None:
    """Logging for a CLI command a person reads: text lines, unless FLOWFORGE_LOG_FORMAT
    asks for JSON (the servers' default, for log collectors)."""
    update = {} if "log_format" in settings.model_fields_set else {"log_format": "text"}
    configure_logging(settings.model_copy(update=update | ({"log_level": level} if level else {})))


def _console(handler: logging.Handler) -> bool:
    """Prefect's console handler (matched by name: this package does not import Prefect)."""
    return type(handler).__name__ == "PrefectConsoleHandler"


def _log_unraisable(unraisable: Any) -> None:
    """Exceptions Python can only report (raised in a callback, a __del__) become one log
    line instead of a traceback on stderr. A known one: pyarrow cannot hand bronze's row
    handler a ragged row with undecodable bytes; bronze then reads the file again with its
    compatibility parser, so nothing is lost."""
    exc = unraisable.exc_value
    logging.getLogger("flowforge.unraisable").warning(
        "exception ignored",
        extra={
            "error": f"{type(exc).__name__}: {exc}"[:300] if exc is not None else "",
            "where": repr(unraisable.object)[:200],
        },
    )


class RotatedOutput:
    """A log file under the state folder that a child process writes its stdout and stderr
    to, through a pipe, kept under `max_bytes`: once a line would pass it, the file becomes
    NAME.1 (NAME.1 becomes NAME.2, ... up to `backups`, the oldest dropped). A stack left
    running for days keeps a bounded log. Give `fd` to the child, then close()."""

    def __init__(self, path: Path, max_bytes: int = 10 << 20, backups: int = 3) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        read_end, self.fd = os.pipe()
        self._thread = threading.Thread(
            target=self._copy, args=(read_end,), name=f"log {path.name}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Closes this process's end: the file ends when the child (its other end) does."""
        os.close(self.fd)

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _copy(self, read_end: int) -> None:
        with os.fdopen(read_end, "rb") as source:
            out = self.path.open("ab")
            try:
                for line in source:
                    if out.tell() and out.tell() + len(line) > self.max_bytes:
                        out.close()
                        self._rotate()
                        out = self.path.open("ab")
                    out.write(line)
                    out.flush()
            finally:
                out.close()

    def _rotate(self) -> None:
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.backups:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
