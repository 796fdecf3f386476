"""Schemathesis hooks for the contract test (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """/api/events streams until the client leaves: fuzz it one round at a time (`once`),
    with everything else as generated. Before every call, not as a map_query hook: the
    coverage phase's cases (an unknown parameter, once=false) do not pass through that one,
    and each of them held the stream open until the 30 s request timeout, spending the
    run's whole time budget on this one operation."""
    if case.operation.path == "/api/events":
        query = case.query if isinstance(case.query, dict) else {}
        case.query = {**query, "once": True}
