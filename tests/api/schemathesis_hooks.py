"""Schemathesis hooks for the contract test (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def map_query(context: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """/api/events streams until the client leaves: fuzz it one round at a time (`once`),
    with everything else as generated."""
    if context.operation.path == "/api/events":
        return {**(query or {}), "once": True}
    return query
