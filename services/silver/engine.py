"""Where silver's polars queries run: a private spill folder, S3 access, error translation.

Every refine gets its own folder under the spill root for the rows between its two
passes; the folder is removed when the refine ends, however it ends. polars reports
object-store trouble as OSError with an "object-store error" text: that becomes
UNAVAILABLE (worth a retry), a full disk or memory RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import polars as pl

from flowforge.errors import ResourceExhausted, Unavailable
from flowforge.runtime import resource_exhausted_from
from flowforge.settings import Settings
from flowforge.storage import polars_storage_options

log = logging.getLogger(__name__)


def spill_root(settings: Settings) -> Path:
    return settings.silver_spill_dir or settings.state_dir / "silver-spill"


def storage_options(settings: Settings) -> dict[str, Any]:
    return {**polars_storage_options(settings), "max_retries": settings.s3_max_attempts}


class Workspace:
    """A private local folder for one refine; use as a context manager."""

    def __init__(self, settings: Settings) -> None:
        root = spill_root(settings)
        root.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="refine-", dir=root))

    def path(self, name: str) -> Path:
        return self.root / name

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def polars_errors(doing: str) -> Iterator[None]:
    """Turns what polars raises while reading or writing into FlowForge's errors."""
    started = time.monotonic()
    try:
        yield
        log.debug("step", extra={"doing": doing, "seconds": round(time.monotonic() - started, 3)})
    except (OSError, pl.exceptions.PolarsError) as exc:
        translated = translate(exc, doing)
        if translated is exc:
            raise
        raise translated from None


def translate(exc: BaseException, doing: str) -> BaseException:
    text = str(exc)
    exhausted = resource_exhausted_from(exc)
    if exhausted is not None and "no space left" in text.lower():
        return ResourceExhausted(
            f"silver ran out of disk space while {doing}; free space in its spill folder "
            f"(FLOWFORGE_SILVER_SPILL_DIR) and retry: {first_line(text)}"
        )
    if exhausted is not None or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.ENOMEM)
    ):
        return exhausted or ResourceExhausted(f"silver ran out of disk or memory while {doing}")
    if "object-store error" in text or isinstance(exc, ConnectionError):
        if isinstance(exc, FileNotFoundError) or "404" in text:
            return Unavailable(
                f"an object vanished from the object store while {doing} (replaced by a newer "
                "run?); retry"
            )
        return Unavailable(f"the object store failed while {doing}: {first_line(text)}")
    return exc


def first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0][:300]
