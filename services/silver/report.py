"""The quality report: rule results, thresholds that fail the layer, warnings and drift."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flowforge.errors import FailedPrecondition
from flowforge.reports import Column, ColumnChange, DuplicateCount, RuleResult, SchemaDrift
from services.silver.transform import Check, drift

TOP_REASONS = 3


@dataclass(frozen=True)
class Counted:
    check: Check
    checked: int
    failed: int

    @property
    def percent(self) -> float:
        return 100.0 * self.failed / self.checked if self.checked else 0.0

    def result(self) -> RuleResult:
        return RuleResult(
            rule_id=self.check.rule_id,
            rule=self.check.rule,
            column=self.check.column,
            action=self.check.action,
            checked=self.checked,
            passed=self.checked - self.failed,
            failed=self.failed,
        )


def breaches(counted: Sequence[Counted]) -> list[str]:
    """Why the layer must fail: `fail` rules that failed (beyond their threshold, if any)
    and rules of any action whose failures exceed max_bad_percent."""
    found = []
    for c in counted:
        limit = c.check.expectation.max_bad_percent if c.check.expectation else None
        if c.failed == 0:
            continue
        if limit is not None and c.percent > limit:
            found.append(f"{describe(c)}, above max_bad_percent {limit:g}")
        elif limit is None and c.check.action == "fail":
            found.append(describe(c))
    return found


def fail_if_breached(counted: Sequence[Counted]) -> None:
    found = breaches(counted)
    if found:
        raise FailedPrecondition(
            "data quality check failed: " + "; ".join(found) + ". Nothing was committed"
        )


def fail_if_mostly_quarantined(
    rows_read: int, by_reason: dict[str, int], counted: Sequence[Counted], ceiling: float
) -> None:
    """spec.max_bad_percent: a run whose quarantine holds more than `ceiling` percent of
    the rows it read fails, so a file silver cannot read (a wrong type, decimal commas)
    is not committed as an empty silver."""
    quarantined = sum(by_reason.values())
    if not rows_read or 100.0 * quarantined / rows_read <= ceiling:
        return
    rules = {c.check.rule_id: f" ({c.check.rule} on column {c.check.column!r})" for c in counted}
    top = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
    reasons = ", ".join(f"{rule_id}: {rows} rows{rules.get(rule_id, '')}" for rule_id, rows in top)
    share = f"{quarantined} of the {rows_read} rows read ({100.0 * quarantined / rows_read:.2f}%)"
    opening = "silver kept none of the rows: " if quarantined == rows_read else ""
    raise FailedPrecondition(
        f"{opening}{share} went to quarantine, above max_bad_percent {ceiling:g} "
        f"(spec.max_bad_percent; 100 allows any share); top reasons: {reasons}. "
        "Nothing was committed"
    )


def describe(c: Counted) -> str:
    return (
        f"rule {c.check.rule_id!r} ({c.check.rule} on column {c.check.column!r}, "
        f"action {c.check.action}) failed for {c.failed} of {c.checked} rows ({c.percent:.2f}%)"
    )


def warn_messages(counted: Sequence[Counted]) -> list[str]:
    """Rules that failed on some rows and kept them (warn, or fail within its threshold)."""
    return [
        f"{describe(c)}; the rows were kept"
        for c in counted
        if c.failed and c.check.action in ("warn", "fail") and not breaches([c])
    ]


def duplicate_counts(by_key_rows: Sequence[tuple[int, int]]) -> list[DuplicateCount]:
    """From (rows sharing a key, keys with that many rows) to the per key count report."""
    return [
        DuplicateCount(key_count=n, keys=keys, rows_removed=keys * (n - 1))
        for n, keys in sorted(by_key_rows)
        if n > 1
    ]


def schema_drift(
    added: Sequence[tuple[str, str]],
    removed: Sequence[tuple[str, str]],
    retyped: Sequence[tuple[str, str, str]],
) -> SchemaDrift:
    return SchemaDrift(
        added=[Column(name=n, type=t) for n, t in added],
        removed=[Column(name=n, type=t) for n, t in removed],
        retyped=[ColumnChange(name=n, old_type=o, new_type=t) for n, o, t in retyped],
    )


def drift_summary(drift: SchemaDrift) -> str:
    parts = []
    if drift.added:
        parts.append("added " + ", ".join(f"{c.name} ({c.type})" for c in drift.added))
    if drift.removed:
        parts.append("removed " + ", ".join(f"{c.name} ({c.type})" for c in drift.removed))
    if drift.retyped:
        parts.append(
            "retyped "
            + ", ".join(f"{c.name} ({c.old_type} -> {c.new_type})" for c in drift.retyped)
        )
    return "; ".join(parts)


def fail_on_drift(
    previous_run_id: str, old: Sequence[tuple[str, str]], new: Sequence[tuple[str, str]]
) -> None:
    """For fail_on_schema_drift: any difference from the committed schema fails the layer."""
    summary = drift_summary(schema_drift(*drift(old, new)))
    if summary:
        raise FailedPrecondition(
            f"the silver schema differs from run {previous_run_id}: {summary}; "
            "nothing was committed (fail_on_schema_drift)"
        )
