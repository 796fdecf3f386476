"""Paths to a field inside a spec or document: ('columns', 2, 'type') <-> columns[2].type."""

from __future__ import annotations

FieldPath = tuple[str | int, ...]


def dotted(path: FieldPath) -> str:
    """('jobs', 0, 'silver', 'columns', 2) -> 'jobs[0].silver.columns[2]'."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
