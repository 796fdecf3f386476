"""One CSV file to bronze batches: parse, decode, add audit columns (no object store here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO

import polars as pl

from services.bronze.parse import Reject, Restart, parse_file
from services.bronze.sniff import Dialect
from services.bronze.transform import Audit, decode_fields, to_bronze


@dataclass
class BronzeBatch:
    frame: pl.DataFrame  # bronze rows: source columns as text plus audit columns
    rejects: list[Reject]
    raw_bytes: int  # size of the parsed fields, to size output parts


def bronze_batches(
    open_stream: Callable[[], AbstractContextManager[IO[bytes]]],
    dialect: Dialect,
    names: list[str],
    block_bytes: int,
    audit: Audit,
    null_markers: tuple[str, ...],
) -> Iterator[BronzeBatch | Restart]:
    """Bronze rows and rejects of one file; after a Restart, discard what came before."""
    for parsed in parse_file(open_stream, dialect, names, block_bytes):
        if isinstance(parsed, Restart):
            yield parsed
            continue
        text, numbers, undecodable = decode_fields(
            parsed.fields, parsed.row_numbers, dialect.delimiter, dialect.encoding
        )
        frame = to_bronze(text, numbers, audit, null_markers)
        yield BronzeBatch(frame, parsed.rejects + undecodable, parsed.fields.nbytes)
