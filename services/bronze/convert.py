"""One CSV file to bronze batches: parse, decode, add audit columns (no object store here)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from services.bronze.parse import LinesUncertain, Restart, parse_file
from services.bronze.rows import DEFAULT_MAX_FIELD_BYTES, Reject
from services.bronze.sniff import Dialect
from services.bronze.transform import Audit, decode_fields, to_bronze


@dataclass
class BronzeBatch:
    frame: pl.DataFrame  # bronze rows: source columns as text plus audit columns
    rejects: list[Reject]
    raw_bytes: int  # size of the parsed fields, to size output parts
    csv_bytes: int = 0  # about the CSV bytes the batch's rows came from (see csv_bytes)


def csv_bytes(fields: pa.RecordBatch) -> int:
    """About the CSV bytes parsed into `fields`: the values' bytes and a delimiter or line
    break after each (quotes and rejected rows left out). Progress only: from the offsets,
    the values themselves are not read."""
    total = fields.num_rows * fields.num_columns
    for column in fields.columns:
        total += pc.sum(pc.binary_length(column)).as_py() or 0
    return int(total)


def bronze_batches(
    open_stream: Callable[[], AbstractContextManager[IO[bytes]]],
    dialect: Dialect,
    names: list[str],
    block_bytes: int,
    audit: Audit,
    null_markers: tuple[str, ...],
    compat: bool = False,
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
) -> Generator[BronzeBatch | Restart, None, None]:
    """Bronze rows and rejects of one file; after a Restart, discard what came before.
    `compat` reads the file with the compatibility parser from the start; a row with a
    field over `max_field_bytes` is rejected."""
    rejected = False
    for parsed in parse_file(open_stream, dialect, names, block_bytes, compat, max_field_bytes):
        if isinstance(parsed, Restart):
            yield parsed
            continue
        if isinstance(parsed, LinesUncertain):
            # The fast parser's line numbers may be off: only rejects show them.
            if rejected:
                yield Restart(f"rejects' line numbers unknown: {parsed.reason}")
                yield from bronze_batches(
                    open_stream,
                    dialect,
                    names,
                    block_bytes,
                    audit,
                    null_markers,
                    compat=True,
                    max_field_bytes=max_field_bytes,
                )
            return
        text, numbers, undecodable = decode_fields(
            parsed.fields,
            parsed.row_numbers,
            parsed.line_numbers,
            dialect.delimiter,
            dialect.encoding,
        )
        frame = to_bronze(text, numbers, audit, null_markers)
        rejects = parsed.rejects + undecodable
        rejected = rejected or bool(rejects)
        yield BronzeBatch(frame, rejects, parsed.fields.nbytes, csv_bytes(parsed.fields))
