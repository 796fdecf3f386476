"""DuckDB's errors in a gold build as the domain errors a caller can act on."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from flowforge.duckdb_s3 import scrub
from flowforge.errors import (
    FailedPrecondition,
    FlowForgeError,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from flowforge.settings import Settings

# DuckDB's pointer into the statement it ran: "LINE 4:   CAST(x AS INTEGER)\n          ^".
_POINTER = re.compile(r"(\d+): ([^\n]*)\n( *)\^\s*")
# What DuckDB says when the OS refused it memory (the process's address-space limit).
_BAD_ALLOCATION = "(bad allocation)"


def translate(
    exc: duckdb.Error, what: str, settings: Settings, spill: Path, message: str | None = None
) -> FlowForgeError:
    """`what` failed with `exc` (whose text, if rewritten, is `message`); the secret scrubbed.

    Over a limit of the build is final (the same model fails the same way again), a full
    spill disk is not (space comes back).
    """
    message = scrub(str(exc) if message is None else message, settings)
    first_line = message.strip().splitlines()[0] if message.strip() else message
    if isinstance(exc, duckdb.OutOfMemoryException) and _BAD_ALLOCATION in message:
        return process_out_of_memory(what, settings, first_line)
    disk_full = any(sign in message.lower() for sign in ("no space left", "disk quota"))
    if isinstance(exc, duckdb.OutOfMemoryException) or disk_full:
        return ResourceExhausted(
            f"{what} needs more memory or spill space than a gold build may use "
            f"(FLOWFORGE_GOLD_MEMORY_LIMIT={settings.gold_memory_limit}, "
            f"FLOWFORGE_GOLD_MAX_TEMP_SIZE={settings.gold_max_temp_size}, "
            f"spilling to FLOWFORGE_GOLD_TEMP_DIRECTORY={spill})"
            f": {first_line}",
            retryable=disk_full,
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


def process_out_of_memory(what: str, settings: Settings, detail: str = "") -> ResourceExhausted:
    # A value DuckDB cannot spill (one huge string or list): the same model needs as much
    # again next time, so retrying cannot help.
    return ResourceExhausted(
        f"{what} needs more memory than a gold build's process may use "
        f"(FLOWFORGE_GOLD_PROCESS_MEMORY_LIMIT={settings.gold_process_memory_limit})"
        + (f": {detail}" if detail else ""),
        retryable=False,
    )


def relocate(message: str, sql: str) -> str:
    """DuckDB's message about `COPY (\\n{sql}\\n) TO ...` as a message about `sql` alone.

    The statement holds the model's lines from its second line on, so "LINE n" points at
    the model's line n - 1, column unchanged. A pointer outside the model (at FlowForge's
    own COPY around it) is dropped: it would show an internal statement and the output URL.
    """
    head, found, tail = message.partition("\n\nLINE ")
    pointer = _POINTER.fullmatch(tail) if found else None
    if pointer is None:
        return head
    line = int(pointer[1]) - 1
    if not 1 <= line <= sql.count("\n") + 1:
        return head
    caret = len(pointer[3]) - len(f"LINE {pointer[1]}: ") + len(f"LINE {line}: ")
    return f"{head}\n\nLINE {line}: {pointer[2]}\n{' ' * caret}^"
