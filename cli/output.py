"""How list commands print: a table for a person at a terminal, tab-separated values when
stdout is a pipe or a file (one line per row, nothing cut or wrapped), JSON with --json."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

Cell = str | int | float | None


def emit(
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    records: Sequence[dict[str, Any]],
    *,
    as_json: bool = False,
    styles: dict[str, str] | None = None,
) -> None:
    """Prints `rows` under `columns`; with as_json, `records` (the full objects) instead."""
    if as_json:
        print(json.dumps(list(records), indent=2, default=str))
    elif not sys.stdout.isatty():
        print("\t".join(columns))
        for row in rows:
            print("\t".join(_plain(cell) for cell in row))
    else:
        table = Table()
        for column in columns:
            table.add_column(column, no_wrap=True, overflow="ellipsis")
        for row in rows:
            table.add_row(
                *(
                    _styled(column, cell, styles or {})
                    for column, cell in zip(columns, row, strict=True)
                )
            )
        Console().print(table)


def _plain(cell: Cell) -> str:
    """One TSV field: a tab or a line break inside a value would split the row."""
    text = "" if cell is None else str(cell)
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _styled(column: str, cell: Cell, styles: dict[str, str]) -> str:
    text = "" if cell is None else str(cell)
    style = styles.get(f"{column}={text}")
    return f"[{style}]{text}[/]" if style else text.replace("[", "\\[")
